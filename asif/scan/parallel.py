"""Compiled loops over rows (queries, anchors) run on every core, a range of rows each."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor


def cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@functools.cache
def _pool() -> ThreadPoolExecutor:
    """One pool for the process: starting threads for each loop cost 5% of a scan."""
    return ThreadPoolExecutor(cores(), thread_name_prefix="asif-scan")


# a forked child has none of its parent's threads: it starts a pool of its own
os.register_at_fork(after_in_child=_pool.cache_clear)


def in_parallel(loop: Callable[[int, int], object], n: int) -> list[object]:
    """`loop(first, last)` over `n` rows split evenly among the cores, in threads (the
    loops release the GIL); their results in order. Loops must not call this themselves."""
    parts = max(1, min(cores(), n))
    bounds = [(n * p // parts, n * (p + 1) // parts) for p in range(parts)]
    if parts == 1:
        return [loop(*bounds[0])]
    return list(_pool().map(lambda b: loop(*b), bounds))
