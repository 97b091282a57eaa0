import threading

import numpy as np
import pytest
import threadpoolctl

from asif.scan.blas_threads import _openblas, blas_in_caller
from asif.scan.exact import exact_topk
from asif.scan.matrix import AnchorMatrix


def _threads() -> list[int]:
    """The process-wide thread counts of the OpenBLAS libraries the scan limits."""
    return [
        info["num_threads"]
        for info in threadpoolctl.threadpool_info()
        if info["internal_api"] == "openblas" and info.get("threading_layer") == "pthreads"
    ]


@pytest.fixture
def two_threads():
    """numpy's OpenBLAS at 2 threads (whatever the cores: the counts below must change)."""
    _openblas.cache_clear()  # every OpenBLAS loaded by now, as `_threads` lists them
    if not _openblas():
        pytest.skip("numpy's BLAS is not OpenBLAS on pthreads here")
    before = [library.get() for library in _openblas()]
    for library in _openblas():
        library.set(2)
    yield
    for library, threads in zip(_openblas(), before, strict=True):
        library.set(threads)


def test_the_blas_stays_single_threaded_until_the_last_scan_leaves(two_threads):
    inside, leave = threading.Event(), threading.Event()

    def other_scan() -> None:
        with blas_in_caller():
            inside.set()
            leave.wait(timeout=30)

    other = threading.Thread(target=other_scan)
    other.start()
    assert inside.wait(timeout=30)
    with blas_in_caller():
        assert set(_threads()) == {1}
    assert set(_threads()) == {1}  # the other scan is still inside
    leave.set()
    other.join(timeout=30)
    assert set(_threads()) == {2}


def test_a_scan_restores_the_blas_threads_even_when_it_fails(two_threads):
    with pytest.raises(ValueError):
        exact_topk(np.ones((2, 4), np.float32), AnchorMatrix.from_float(np.eye(3), "float32"), 2)
    assert set(_threads()) == {2}
