"""Compiled loops over queries, run on every core: each call takes a range of queries."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor


def cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def over_queries(loop: Callable[[int, int], object], n: int) -> list[object]:
    """`loop(first, last)` over `n` queries split evenly among the cores, in threads (the
    loops release the GIL); their results in order."""
    parts = max(1, min(cores(), n))
    bounds = [(n * p // parts, n * (p + 1) // parts) for p in range(parts)]
    if parts == 1:
        return [loop(*bounds[0])]
    with ThreadPoolExecutor(parts) as pool:
        return list(pool.map(lambda b: loop(*b), bounds))
