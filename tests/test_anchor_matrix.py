import numpy as np
import pytest
import torch

from asif.anchor_matrix import AnchorMatrix
from asif.errors import DimensionMismatchError
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


def test_rejects_bad_dtypes_and_shapes():
    with pytest.raises(TypeError, match="float64"):
        AnchorMatrix(np.ones((2, 2)))
    with pytest.raises(DimensionMismatchError, match="2-D"):
        AnchorMatrix(np.ones(3, np.float32))
    with pytest.raises(ValueError, match="precision"):
        AnchorMatrix.from_float(np.ones((2, 2)), "int4")


def test_bfloat16_copy_follows_appends_and_deletes():
    rng = np.random.default_rng(2)
    x = random_unit(rng, 100, 16)
    m = AnchorMatrix.from_float(x).reserve(50)
    copy = m.bfloat16_copy()
    assert copy.ready == 100
    want = torch.from_numpy(x).bfloat16()
    assert torch.equal(copy.rows[:100], want)
    np.testing.assert_allclose(copy.norm[:100], 1, atol=1e-6)
    residual = np.linalg.norm(x - want.float().numpy(), axis=1)
    np.testing.assert_allclose(copy.residual[:100], residual, rtol=1e-5)

    extra = random_unit(rng, 10, 16)
    grown = m.append(extra)
    assert grown.bfloat16_copy() is copy and copy.ready == 110  # in place: new rows only
    assert torch.equal(copy.rows[100:110], torch.from_numpy(extra).bfloat16())

    kept = grown.delete([0, 5, 105])
    moved = kept._storage.bfloat16  # carried over, not remade
    assert moved is not None and moved.ready == 107
    rows = np.delete(np.arange(110), [0, 5, 105])
    assert torch.equal(kept.bfloat16_copy().rows[:107], copy.rows[rows])
    np.testing.assert_array_equal(kept.bfloat16_copy().residual[:107], copy.residual[rows])
    with pytest.raises(TypeError, match="int8"):
        AnchorMatrix.from_float(x, "int8").bfloat16_copy()
