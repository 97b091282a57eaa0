"""float16 and int8 anchor rows back to float32: one formula for every reader (chunks, picked
rows, device copies), so a row reads the same whichever way it is read."""

from __future__ import annotations

import torch


def int8_step(scale: torch.Tensor) -> torch.Tensor:
    """The value of one int8 code in each row of per-row `scale` (`round(x / scale * 127)`)."""
    return scale / 127.0


def to_float32(stored: torch.Tensor, scale: torch.Tensor | None, out: torch.Tensor) -> torch.Tensor:
    """float16 rows, or int8 rows with their per-row `scale`, dequantised into the float32
    tensor `out`: each int8 code times its row's `int8_step`."""
    out.copy_(stored)
    return out if scale is None else out.mul_(int8_step(scale)[:, None])
