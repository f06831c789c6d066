"""lendsms: the service (HTTP, pipeline, store, dispatch, audit, CLI)."""

__version__ = "0.1.0"
