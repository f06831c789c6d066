"""Removing the keys one test run or bench run wrote to the shared Redis
server (every run uses a prefix of its own). No pytest import: the benches
use it too."""

from __future__ import annotations


def drop_keys_containing(url: str, marker: str) -> None:
    """Delete every key whose name contains ``marker`` (hash tags put the
    prefix inside braces, so not only at the start)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        for key in client.scan_iter(match=f"*{marker}*", count=1000):
            client.delete(key)
    finally:
        client.close()
