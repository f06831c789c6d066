"""Request signing for the SMS providers, one module per scheme.

Pure functions (no clock, no I/O): the caller passes timestamps and nonces, so
every scheme is checked against the providers' published known-answer vectors
(``tests/providers/test_signing.py``).
"""
