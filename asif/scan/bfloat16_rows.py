"""The bfloat16 rows an exact scan multiplies first, and the row norms that bound their error.

On CPUs with AVX512_BF16, bfloat16 products run at about twice the float32 speed. The scan
makes the bfloat16 rows chunk by chunk from the stored ones, so they cost no memory beyond
8 bytes of norms per row; only anchors their error bound cannot rule out are recomputed in
float32 against the (dequantised) rows themselves.

float32 rows give their high halves: a float32's high 16 bits are a bfloat16, the value
truncated toward zero, read in place. Truncation shrinks values by 2^-8 / (2 ln 2) of
themselves on average (for log-uniform mantissas), so these products are compared as if
scaled up by `SCALE`: the error bound then rests on `row - SCALE * halves`, about as small as
rounding to nearest would leave. float16 and int8 rows are dequantised to float32 a few rows
at a time (in cache) and rounded to nearest: their scale is 1.
"""

from __future__ import annotations

import math
import sys
import threading
import warnings
from typing import TYPE_CHECKING

import numpy as np
import torch

from asif.scan.scratch import scratch

if TYPE_CHECKING:
    from asif.scan.matrix import AnchorMatrix

FILL_ROWS = 65_536  # rows measured at a time: bounds the temporary float32 tensors
ROUND_ROWS = 2048  # rows dequantised at a time before rounding: they stay in the CPU's cache
LITTLE_ENDIAN = sys.byteorder == "little"  # the high half is the second int16 of a float32
SCALE = 1 + 2.0**-8 / (2 * math.log(2))


def shared_tensor(rows: np.ndarray) -> torch.Tensor:
    """A tensor sharing `rows` (read-only memory maps included: the tensor is only read)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(np.ascontiguousarray(rows))


def high_halves(rows: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """The float32 `rows` truncated to bfloat16, written into the int16 buffer `out`."""
    n, d = rows.shape
    halves = rows.view(torch.int16).view(n, d, 2)[:, :, 1 if LITTLE_ENDIAN else 0]
    return out[:n].copy_(halves).view(torch.bfloat16)


def _rounded(matrix: AnchorMatrix, rows: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """`matrix`'s float32 `rows` (from `chunk`) in bfloat16, written into the int16 buffer
    `out`: high halves for float32 matrices, else rounded to nearest."""
    if matrix.precision == "float32":
        return high_halves(rows, out)
    return out[: len(rows)].view(torch.bfloat16).copy_(rows)


def bfloat16_rows(matrix: AnchorMatrix, start: int, stop: int, out: torch.Tensor) -> torch.Tensor:
    """Rows `start:stop` of `matrix` in bfloat16, written into the int16 buffer `out`: the
    high halves of float32 rows, else the dequantised rows rounded to nearest.

    Their error is bounded by the residual norms of `RowNorms`, with `bfloat16_scale`.
    """
    if matrix.precision == "float32":
        return _rounded(matrix, matrix.chunk(start, stop), out)
    with scratch(((min(ROUND_ROWS, stop - start), matrix.dim), torch.float32)) as (piece,):
        for at in range(start, stop, ROUND_ROWS):
            end = min(at + ROUND_ROWS, stop)
            _rounded(matrix, matrix.chunk(at, end, piece[: end - at]), out[at - start :])
    return out[: stop - start].view(torch.bfloat16)


def bfloat16_scale(matrix: AnchorMatrix) -> float:
    """The factor that centres `bfloat16_rows`' products on the float32 ones."""
    return SCALE if matrix.precision == "float32" else 1.0


class RowNorms:
    """For rows `[:ready]` of a row buffer, filled on demand: `norm[i]`, the (dequantised)
    row's L2 norm, and `residual[i]`, that of `row - bfloat16_scale * bfloat16_rows(row)`.

    Rows of the buffer never change once written (see `_Storage`), so norms already measured
    stay valid for every matrix viewing the buffer.
    """

    def __init__(self, capacity: int) -> None:
        self.norm = torch.empty(capacity)
        self.residual = torch.empty(capacity)
        self.ready = 0
        self._lock = threading.Lock()

    def fill(self, matrix: AnchorMatrix) -> None:
        """Measure rows `ready:len(matrix)` of `matrix`, a view of the buffer these follow."""
        scale = bfloat16_scale(matrix)
        with self._lock:
            for start in range(self.ready, len(matrix), FILL_ROWS):
                end = min(start + FILL_ROWS, len(matrix))
                x = matrix.chunk(start, end)
                self.norm[start:end] = x.norm(dim=1)
                rounded = _rounded(matrix, x, torch.empty(x.shape, dtype=torch.int16))
                self.residual[start:end] = (x - scale * rounded.float()).norm(dim=1)
            self.ready = max(self.ready, len(matrix))

    def copy_rows(self, source: RowNorms, at: int, start: int, stop: int) -> None:
        """Rows `start:stop` of `source` (already measured) into rows `at:` of these norms."""
        n = stop - start
        self.norm[at : at + n] = source.norm[start:stop]
        self.residual[at : at + n] = source.residual[start:stop]
