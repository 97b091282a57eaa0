import numpy as np
import pytest
import torch

from asif.errors import DimensionMismatchError, NonFiniteError
from asif.scan.bfloat16_rows import SCALE, high_halves
from asif.scan.matrix import AnchorMatrix
from tests.dense_reference import random_unit


@pytest.mark.parametrize(
    ("precision", "bytes_per_value", "tol"),
    [
        ("float32", 4, 0),
        ("float16", 2, 1e-3),
        ("int8", 1, 1 / 254),
    ],
)
def test_precision_size_and_error(precision, bytes_per_value, tol):
    x = random_unit(np.random.default_rng(0), 500, 64)
    m = AnchorMatrix.from_float(x, precision)
    assert m.precision == precision and len(m) == 500 and m.dim == 64
    assert m.data.nbytes == 500 * 64 * bytes_per_value
    assert np.abs(m.to_float32() - x).max() <= tol + 1e-7
    np.testing.assert_array_equal(m.chunk(100, 200).numpy(), m.to_float32()[100:200])


def test_take_and_append_keep_precision():
    rng = np.random.default_rng(1)
    m = AnchorMatrix.from_float(random_unit(rng, 10, 8), "int8")
    extra = random_unit(rng, 3, 8)
    grown = m.append(extra)
    assert len(grown) == 13 and grown.precision == "int8"
    np.testing.assert_array_equal(grown.take(np.arange(10)).data, m.data)
    assert np.abs(grown.to_float32()[10:] - extra).max() <= 1 / 254 + 1e-7
    with pytest.raises(DimensionMismatchError, match="dimension 4"):
        m.append(np.ones((2, 4), np.float32))
    with pytest.raises(NonFiniteError, match=r"first: \[0\]"):
        m.append(np.full((1, 8), np.inf, np.float32))
    assert len(m) == 10


def test_rejects_bad_dtypes_and_shapes():
    with pytest.raises(TypeError, match="float64"):
        AnchorMatrix(np.ones((2, 2)))
    with pytest.raises(DimensionMismatchError, match="2-D"):
        AnchorMatrix(np.ones(3, np.float32))
    with pytest.raises(ValueError, match="precision"):
        AnchorMatrix.from_float(np.ones((2, 2)), "int4")
    with pytest.raises(NonFiniteError, match=r"anchor embeddings .* first: \[1\]"):
        AnchorMatrix.from_float(np.array([[1, 0], [np.nan, 0]], np.float32))


def test_row_norms_follow_appends_and_deletes():
    rng = np.random.default_rng(2)
    x = random_unit(rng, 100, 16)
    m = AnchorMatrix.from_float(x).reserve(50)
    norms = m.row_norms()
    assert norms.ready == 100
    halves = high_halves(torch.from_numpy(x), torch.empty(x.shape, dtype=torch.int16))
    np.testing.assert_allclose(norms.norm[:100], 1, atol=1e-6)
    residual = np.linalg.norm(x - SCALE * halves.float().numpy(), axis=1)
    np.testing.assert_allclose(norms.residual[:100], residual, rtol=1e-5)

    extra = random_unit(rng, 10, 16)
    grown = m.append(extra)
    assert grown.row_norms() is norms and norms.ready == 110  # in place: new rows only
    np.testing.assert_allclose(norms.norm[100:110], np.linalg.norm(extra, axis=1), rtol=1e-6)

    kept = grown.delete([0, 5, 105])
    moved = kept._storage.norms  # carried over, not remeasured
    assert moved is not None and moved.ready == 107
    rows = np.delete(np.arange(110), [0, 5, 105])
    np.testing.assert_array_equal(kept.row_norms().residual[:107], norms.residual[rows])


@pytest.mark.parametrize("precision", ["float32", "float16", "int8"])
def test_chunks_read_the_dequantised_values(precision):
    m = AnchorMatrix.from_float(random_unit(np.random.default_rng(4), 300, 24), precision)
    out = torch.full((50, 24), torch.nan)
    np.testing.assert_array_equal(m.chunk(100, 150, out).numpy(), m.to_float32()[100:150])
    norms = m.row_norms()  # every precision has bfloat16 rows, and their residual norms
    np.testing.assert_allclose(norms.norm[:300], np.linalg.norm(m.to_float32(), axis=1), 1e-6)


def test_append_shares_spare_capacity_without_changing_older_matrices():
    rng = np.random.default_rng(3)
    for precision in ("float32", "float16", "int8"):
        base = AnchorMatrix.from_float(random_unit(rng, 50, 6), precision).reserve(10)
        one = base.append(random_unit(rng, 5, 6))
        two = one.append(random_unit(rng, 5, 6))
        assert one.data.base is two.data.base  # in place, no copy
        other = one.append(random_unit(rng, 3, 6))  # `one` is no longer the newest: copies
        assert other.data.base is not two.data.base
        np.testing.assert_array_equal(other.to_float32()[:55], two.to_float32()[:55])
        assert (len(base), len(one), len(two), len(other)) == (50, 55, 60, 58)
        np.testing.assert_array_equal(
            two.delete([0, 10, 59]).to_float32(), np.delete(two.to_float32(), [0, 10, 59], 0)
        )
