import numpy as np
import pytest

from asif.errors import EmptyInputError
from asif.scan.exact import ExactScan
from asif.scan.matrix import AnchorMatrix
from asif.scan.tombstones import TombstoneScan
from tests.dense_reference import random_unit


def exact(rng, n=120, d=8):
    m = AnchorMatrix.from_float(random_unit(rng, n, d))
    return ExactScan(m, m, chunk_size=16)


@pytest.mark.parametrize("k", [1, 10, 115])
def test_top_k_of_the_live_rows_only(k):
    rng = np.random.default_rng(k)
    base = exact(rng)
    dead = rng.choice(120, 10, replace=False)
    scan = TombstoneScan(base, dead)
    q = random_unit(rng, 6, 8)
    sims, rows = scan.topk(q, "image", k)
    live = scan.live_rows()
    ref_sims, ref_rows = base.take(live).topk(q, "image", k)
    np.testing.assert_array_equal(rows, live[ref_rows])
    np.testing.assert_allclose(sims, ref_sims)
    assert scan.n_live == 110 and scan.n_rows == 120 and rows.shape == (6, min(k, 110))
    compact = scan.compacted()
    np.testing.assert_array_equal(compact.image.to_float32(), base.image.to_float32()[live])


def test_bad_tombstones():
    rng = np.random.default_rng(0)
    base = exact(rng, n=3)
    with pytest.raises(EmptyInputError):
        TombstoneScan(base, [0, 1, 2])
    with pytest.raises(IndexError):
        TombstoneScan(base, [3])
    assert TombstoneScan(base, [2, 2, 0]).dead.tolist() == [0, 2]
