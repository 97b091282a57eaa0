import numpy as np
import torch

from asif.scan.bfloat16_rows import SCALE, bfloat16_rows, bfloat16_scale, high_halves, row_factors
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


def test_float16_rows_are_rounded_to_nearest_and_int8_rows_are_their_codes():
    x = random_unit(np.random.default_rng(2), 1000, 16)
    x[0, :3] = [6e-8, -3e-5, 0.0]  # float16 subnormals and zero
    half = AnchorMatrix.from_float(x, "float16")
    out = torch.empty((1005, 16), dtype=torch.int16)  # a larger buffer: its first rows used
    rows = bfloat16_rows(half, 0, 1000, out)
    assert rows.dtype == torch.bfloat16 and rows.shape == (1000, 16)
    want = torch.from_numpy(half.to_float32()).bfloat16()  # torch: rounded to nearest even
    assert torch.equal(rows.view(torch.int16), want.view(torch.int16))
    assert bfloat16_scale(half) == 1.0 and (row_factors(half, 0, 5) == 1.0).all()

    codes = AnchorMatrix.from_float(x, "int8")
    rows = bfloat16_rows(codes, 3, 1000, out)
    assert torch.equal(rows.float(), torch.from_numpy(codes.data[3:].astype(np.float32)))
    factors = row_factors(codes, 3, 1000)
    np.testing.assert_array_equal((factors * rows.float()).numpy(), codes.to_float32()[3:])
    assert bfloat16_scale(codes) == 1.0
    f32 = AnchorMatrix.from_float(x)
    assert bfloat16_scale(f32) == SCALE and (row_factors(f32, 0, 2) == SCALE).all()
