import numpy as np
import pytest
import torch

from asif.scan.bfloat16_rows import ROUND_ROWS, SCALE, bfloat16_rows, bfloat16_scale, high_halves
from asif.scan.matrix import AnchorMatrix
from tests.dense_reference import random_unit


def test_high_halves_are_the_float32_values_truncated():
    x = np.concatenate([random_unit(np.random.default_rng(0), 50, 24), -np.eye(2, 24)])
    x = x.astype(np.float32)
    out = torch.empty((60, 24), dtype=torch.int16)  # a larger buffer: its first rows are used
    halves = high_halves(torch.from_numpy(x), out)
    assert halves.dtype == torch.bfloat16 and halves.shape == x.shape
    want = (x.view(np.uint32) >> 16).astype(np.uint16).view(np.int16)
    np.testing.assert_array_equal(halves.view(torch.int16).numpy(), want)
    h = halves.float().numpy()
    assert (np.sign(h) == np.sign(x))[x != 0].all() and (np.abs(h) <= np.abs(x)).all()
    assert (np.abs(x - h) <= 2.0**-7 * np.abs(x)).all()


def test_scale_centres_what_truncation_drops():
    x = torch.from_numpy(random_unit(np.random.default_rng(1), 2000, 384))
    h = high_halves(x, torch.empty(x.shape, dtype=torch.int16)).float()
    plain, centred = (x - h).norm(dim=1).max(), (x - SCALE * h).norm(dim=1).max()
    rounded = (x - x.bfloat16().float()).norm(dim=1).max()
    assert centred < 0.6 * plain and centred < 1.15 * rounded


@pytest.mark.parametrize("precision", ["float16", "int8"])
def test_compressed_rows_are_the_dequantised_rows_rounded(precision):
    n = ROUND_ROWS + 70  # more than one piece, the last one ragged
    m = AnchorMatrix.from_float(random_unit(np.random.default_rng(2), n, 16), precision)
    out = torch.empty((n + 5, 16), dtype=torch.int16)
    rows = bfloat16_rows(m, 3, n, out)
    assert rows.dtype == torch.bfloat16 and rows.shape == (n - 3, 16)
    want = torch.from_numpy(m.to_float32()[3:]).bfloat16()  # rounded to nearest
    assert torch.equal(rows.view(torch.int16), want.view(torch.int16))
    assert (
        bfloat16_scale(m) == 1.0
        and bfloat16_scale(AnchorMatrix.from_float(m.to_float32())) == SCALE
    )
