import numpy as np
import torch

from asif.scan.bfloat16_halves import SCALE, high_halves
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
