import numpy as np
import torch

from asif.scan.dequantise import to_float32


def test_int8_rows_scale_by_their_own_scale_over_127_and_float16_rows_widen():
    codes = torch.tensor([[127, -64, 0], [1, 2, -127]], dtype=torch.int8)
    scale = torch.tensor([0.5, 2.0])
    out = to_float32(codes, scale, torch.empty(2, 3))
    np.testing.assert_array_equal(out.numpy(), codes.numpy() * (scale.numpy() / 127)[:, None])
    half = torch.tensor([[0.1, -2.5]], dtype=torch.float16)
    out = torch.empty(1, 2)
    assert to_float32(half, None, out) is out and out.dtype == torch.float32
    np.testing.assert_array_equal(out.numpy(), half.numpy().astype(np.float32))
