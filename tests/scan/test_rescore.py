import numpy as np
import pytest
import torch

from asif.scan.bfloat16_rows import int8_steps
from asif.scan.matrix import AnchorMatrix
from asif.scan.rescore import rescore as rescore_with_steps
from tests.dense_reference import random_unit

PRECISIONS = ["float32", "float16", "int8"]


def rescore(queries, anchors, indices, valid):
    return rescore_with_steps(queries, anchors, int8_steps(anchors), indices, valid)


def candidates(rng: np.random.Generator, n: int, rows: int, width: int) -> tuple[torch.Tensor, ...]:
    indices = torch.from_numpy(rng.integers(0, rows, size=(n, width)))
    valid = torch.from_numpy(rng.random((n, width)) < 0.7)
    return indices, valid


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize(("n", "d"), [(1, 1), (5, 37), (9, 768), (0, 8)])
def test_similarities_of_the_dequantised_rows_where_valid(precision, n, d):
    rng = np.random.default_rng(d)
    anchors = AnchorMatrix.from_float(random_unit(rng, 300, d), precision)
    queries = torch.from_numpy(random_unit(rng, n, d))
    indices, valid = candidates(rng, n, 300, 40)
    out = rescore(queries, anchors, indices, valid)
    rows = anchors.to_float32().astype(np.float64)
    want = np.einsum("nd,nkd->nk", queries.numpy().astype(np.float64), rows[indices.numpy()])
    assert out.dtype == torch.float32 and out.shape == (n, 40)
    np.testing.assert_allclose(out.numpy()[valid.numpy()], want[valid.numpy()], atol=1e-6)
    assert (out[~valid] == -torch.inf).all()


@pytest.mark.parametrize("precision", PRECISIONS)
def test_one_hot_queries_read_each_element_exactly_as_dequantised(precision):
    # float16 subnormals and extremes, int8 codes of +-127 and 0, odd widths (misaligned rows)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6, 13)).astype(np.float32)
    x[0, :4] = [3e-7, -6e-8, 6.1e-5, 0.0]
    x[1] = np.linspace(-1, 1, 13)
    anchors = AnchorMatrix.from_float(x, precision)
    queries = torch.eye(13)
    indices = torch.arange(6).repeat(13, 1)
    out = rescore(queries, anchors, indices, torch.ones(13, 6, dtype=torch.bool))
    np.testing.assert_array_equal(out.numpy().T, anchors.to_float32())


@pytest.mark.parametrize("precision", PRECISIONS)
def test_equal_rows_get_equal_values_wherever_they_lie(precision):
    rng = np.random.default_rng(2)
    row = random_unit(rng, 1, 101)  # 101 columns: the copies start at every alignment
    anchors = AnchorMatrix.from_float(np.repeat(row, 64, axis=0), precision)
    queries = torch.from_numpy(random_unit(rng, 3, 101))
    indices = torch.arange(64).repeat(3, 1)
    out = rescore(queries, anchors, indices, torch.ones(3, 64, dtype=torch.bool))
    assert all(len(set(r)) == 1 for r in out.tolist())
