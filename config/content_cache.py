"""A file cache for the slow, derived parts of a content pack: pinyin
readings (pypinyin) and traditional spellings (OpenCC) of some 19,000 terms,
the compiled pack itself (``spec``: its rules with every derived spelling,
keyed by the pack file, every lexicon file and the compiler's source) and
the automaton keys (``keys``) take seconds to compute and never change for
the same inputs and library versions.

Entries are plain JSON (never pickle) under ``var/cache/content/`` (beside
the settings file of a serving process, :func:`use_default_dir`; else in the
working directory), or in the folder named by ``LENDSMS_CONTENT_CACHE``
(``off`` disables the cache), one file per
key; the key is a SHA-256 of the kind, the library version and the inputs in
order, so an edited lexicon or an upgraded library simply misses. A file's
first line is the SHA-256 of the JSON after it: an entry whose bytes are not
the ones written (truncated, damaged) is not used, so a decoder may trust the
shape of what it reads and decode it lazily. A missing, unreadable or
malformed entry is recomputed; a cache that cannot be written is skipped.
Writes are atomic (temporary file + rename); only the most recently used
entries of each kind are kept.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable
from importlib import metadata
from pathlib import Path
from typing import Any, Final, TypeVar

__all__ = ["cache_dir", "cached", "code_version", "read_entry", "use_default_dir"]

ENV: Final = "LENDSMS_CONTENT_CACHE"
DEFAULT_DIR: Final = Path("var/cache/content")
_FORMAT: Final = 2  # bump when the stored shape changes (2: the digest line)
KEEP: Final = 8  # entries kept per kind (every pack has its own)
_default_dir: Path = DEFAULT_DIR

T = TypeVar("T")


def code_version(libraries: Iterable[str], sources: Iterable[Path]) -> str:
    """A ``version`` for :func:`cached`: the installed versions of
    ``libraries`` and the bytes of the ``sources`` that derive an entry."""
    digest = hashlib.sha256()
    for library in libraries:
        digest.update(f"{library}={metadata.version(library)}\x00".encode())
    for path in sources:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def use_default_dir(folder: Path) -> None:
    """The folder used when ``LENDSMS_CONTENT_CACHE`` is not set (the app
    passes ``var/cache/content`` beside its settings file, so a gateway
    started from any directory finds the cache its deployment built)."""
    global _default_dir  # one process-wide default, like the environment
    _default_dir = folder


def cache_dir() -> Path | None:
    """The cache folder, or None when switched off."""
    value = os.environ.get(ENV, "")
    if value.strip().lower() == "off":
        return None
    return Path(value) if value.strip() else _default_dir


def _key(kind: str, version: str, inputs: Iterable[str]) -> str:
    digest = hashlib.sha256(f"{_FORMAT}\x00{kind}\x00{version}\x00".encode())
    for item in inputs:
        digest.update(item.encode())
        digest.update(b"\x00")
    return digest.hexdigest()


def cached(
    kind: str,
    version: str,
    inputs: list[str],
    compute: Callable[[], T],
    encode: Callable[[T], Any],
    decode: Callable[[Any], T],
) -> T:
    """``compute()``, or its stored result for the same kind, version and inputs.

    ``encode`` turns the result into JSON data, ``decode`` back (and raises
    ValueError, TypeError or KeyError for data of the wrong shape).
    """
    folder = cache_dir()
    if folder is None:
        return compute()
    path = folder / f"{kind}-{_key(kind, version, inputs)}.json"
    try:
        found = decode(read_entry(path))
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        pass
    else:
        _touch(path)
        return found
    result = compute()
    _store(path, encode(result))
    _prune(folder, kind)
    return result


def read_entry(path: Path) -> Any:
    """An entry's JSON data; ValueError unless its bytes match its digest."""
    raw = path.read_bytes()
    head, _, body = raw.partition(b"\n")
    if head != b"sha256:" + hashlib.sha256(body).hexdigest().encode():
        raise ValueError(f"{path.name}: digest mismatch")
    return json.loads(body)


def _touch(path: Path) -> None:
    """Mark an entry as just used: pruning keeps the most recently used."""
    try:
        os.utime(path)
    except OSError:
        return


def _prune(folder: Path, kind: str) -> None:
    """Keep the KEEP most recently used entries of a kind (lexicon edits and
    packs compiled once, in tests, leave old ones)."""
    try:
        entries = sorted(folder.glob(f"{kind}-*.json"), key=lambda p: p.stat().st_mtime)
        for old in entries[:-KEEP]:
            old.unlink(missing_ok=True)
    except OSError:
        return


def _store(path: Path, data: Any) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(b"sha256:" + hashlib.sha256(body).hexdigest().encode() + b"\n")
                out.write(body)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError:
        return  # a read-only checkout still works, only slower
