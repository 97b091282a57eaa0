"""numpy's BLAS products run in the thread that calls them while a scan runs.

The float32 scan shares each product out among its own threads (`asif.scan.parallel`),
then selects from it on every core. OpenBLAS's own workers spin for about 0.1 s after each
product they take part in, holding cores the selection needs (measured at 10k x 768
anchors: the scan 1.2 times faster without them). OpenBLAS's thread count is process-wide:
scans count themselves in, the first one in sets it to 1 and the last one out restores it,
through OpenBLAS's own functions (threadpoolctl, which finds the libraries, ignores limits
set from any thread but the first that set one, so concurrent scans could not restore it).
OpenBLAS builds on OpenMP threads, and other BLAS libraries, are left as they are.
"""

from __future__ import annotations

import ctypes
import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy  # noqa: F401  (loaded before `_openblas` looks for its BLAS library)
import threadpoolctl

# symbol affixes: scipy-openblas as numpy's (64-bit) and scipy's wheels bundle it, then others
AFFIXES = (("scipy_", "64_"), ("scipy_", ""), ("", "64_"), ("", ""))


@dataclass(frozen=True)
class _OpenBlas:
    """One loaded OpenBLAS library's process-wide thread count."""

    get: Callable[[], int]
    set: Callable[[int], object]


@functools.cache
def _openblas() -> tuple[_OpenBlas, ...]:
    """The loaded OpenBLAS libraries that run their own threads (pthreads), numpy's among
    them: found once."""
    found = []
    for info in threadpoolctl.threadpool_info():
        if info["internal_api"] != "openblas" or info.get("threading_layer") != "pthreads":
            continue
        library = ctypes.CDLL(info["filepath"])
        for prefix, suffix in AFFIXES:
            get = getattr(library, f"{prefix}openblas_get_num_threads{suffix}", None)
            set_ = getattr(library, f"{prefix}openblas_set_num_threads{suffix}", None)
            if get is not None and set_ is not None:
                get.restype, set_.argtypes = ctypes.c_int, [ctypes.c_int]
                found.append(_OpenBlas(get, set_))
                break
    return tuple(found)


class _Users:
    """The scans inside `blas_in_caller`, and the thread counts they found."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0
        self.before: list[int] = []


_users = _Users()


@contextmanager
def blas_in_caller() -> Iterator[None]:
    """numpy's BLAS products run single-threaded, each in the thread that calls it, while
    any scan is inside (numpy calls of other threads included, for that time)."""
    with _users.lock:
        if _users.count == 0:
            _users.before = [library.get() for library in _openblas()]
            for library in _openblas():
                library.set(1)
        _users.count += 1
    try:
        yield
    finally:
        with _users.lock:
            _users.count -= 1
            if _users.count == 0:
                for library, threads in zip(_openblas(), _users.before, strict=True):
                    library.set(threads)
