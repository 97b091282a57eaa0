import multiprocessing
import threading

import pytest

from asif.scan.parallel import cores, in_parallel


def _ranges(n: int) -> list[object]:
    return in_parallel(lambda first, last: (first, last), n)


@pytest.mark.parametrize("n", [0, 1, 2, 7])
def test_rows_are_split_into_consecutive_ranges(n):
    ranges = _ranges(n)
    assert ranges[0][0] == 0 and ranges[-1][1] == n  # type: ignore[index]
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:], strict=False))  # type: ignore[index]


def test_a_forked_child_gets_a_pool_of_its_own():
    # the parent's pool with all its threads started (each waits for the other), then idle:
    # none of them survives a fork, yet the inherited pool would count them
    together = threading.Barrier(min(cores(), 2))
    in_parallel(lambda first, last: together.wait(timeout=30), 2)
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.apply_async(_ranges, (8,)).get(timeout=60)[-1][1] == 8
