"""Writes that are complete or absent: a reader (or a run after a crash) never sees half a file.

Files are written to a temporary name in the same folder, flushed to disk and renamed over the
destination (`os.replace` is atomic on one file system); folders are filled under a hidden
staging name beside the destination and renamed into place once complete.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


@contextmanager
def atomic_file(path: str | Path) -> Iterator[BinaryIO]:
    """A binary file to write `path` through; it replaces `path` only if the block succeeds.

    The parent folder is created if missing. On an exception the temporary file is removed
    and whatever was at `path` stays as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` atomically; returns `path`."""
    with atomic_file(path) as f:
        f.write(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """Write `text` to `path` atomically; returns `path`."""
    return atomic_write_bytes(path, text.encode(encoding))


@contextmanager
def staged_folder(path: str | Path) -> Iterator[Path]:
    """An empty staging folder beside `path`, renamed to `path` when the block succeeds.

    A folder already at `path` is replaced only then (it is moved aside to ``.<name>.old``,
    the staging folder takes its place, and the old one is deleted). On an exception the
    staging folder is deleted and `path` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield staging
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            path.rename(old)
            staging.rename(path)
            shutil.rmtree(old)
        else:
            staging.rename(path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
