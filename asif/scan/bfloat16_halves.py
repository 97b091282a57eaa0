"""The bfloat16 high halves of float32 rows, and the row norms that bound what they drop.

A float32's high 16 bits are a bfloat16: the value truncated toward zero. Exact scans
multiply the queries with these halves first (on CPUs with AVX512_BF16, about twice the
float32 speed), gathered chunk by chunk from the float32 rows themselves, so they cost no
memory beyond 8 bytes of norms per row; only anchors their error bound cannot rule out are
recomputed in float32.

Truncation shrinks values by 2^-8 / (2 ln 2) of themselves on average (for log-uniform
mantissas), so products are compared as if scaled up by `SCALE`: the error bound then rests
on `row - SCALE * halves`, about as small as rounding to nearest would leave.
"""

from __future__ import annotations

import math
import sys
import threading
import warnings

import numpy as np
import torch

FILL_ROWS = 65_536  # rows measured at a time: bounds the temporary float32 tensors
LITTLE_ENDIAN = sys.byteorder == "little"  # the high half is the second int16 of a float32
SCALE = 1 + 2.0**-8 / (2 * math.log(2))


def float32_tensor(rows: np.ndarray) -> torch.Tensor:
    """A tensor sharing `rows` (read-only memory maps included: the tensor is only read)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(np.ascontiguousarray(rows, dtype=np.float32))


def high_halves(rows: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """The float32 `rows` truncated to bfloat16, written into the int16 buffer `out`."""
    n, d = rows.shape
    halves = rows.view(torch.int16).view(n, d, 2)[:, :, 1 if LITTLE_ENDIAN else 0]
    return out[:n].copy_(halves).view(torch.bfloat16)


class RowNorms:
    """For rows `[:ready]` of a float32 row buffer, filled on demand: `norm[i]`, the row's L2
    norm, and `residual[i]`, that of `row - SCALE * high_halves(row)`.

    Rows of the buffer never change once written (see `_Storage`), so norms already measured
    stay valid for every matrix viewing the buffer.
    """

    def __init__(self, capacity: int) -> None:
        self.norm = torch.empty(capacity)
        self.residual = torch.empty(capacity)
        self.ready = 0
        self._lock = threading.Lock()

    def fill(self, data: np.ndarray, stop: int) -> None:
        """Measure rows `ready:stop` of `data`, the float32 buffer these norms follow."""
        with self._lock:
            for start in range(self.ready, stop, FILL_ROWS):
                end = min(start + FILL_ROWS, stop)
                x = float32_tensor(data[start:end])
                self.norm[start:end] = x.norm(dim=1)
                high = high_halves(x, torch.empty(x.shape, dtype=torch.int16)).float()
                self.residual[start:end] = (x - SCALE * high).norm(dim=1)
            self.ready = max(self.ready, stop)

    def copy_rows(self, source: RowNorms, at: int, start: int, stop: int) -> None:
        """Rows `start:stop` of `source` (already measured) into rows `at:` of these norms."""
        n = stop - start
        self.norm[at : at + n] = source.norm[start:stop]
        self.residual[at : at + n] = source.residual[start:stop]
