"""The bfloat16 rows an exact scan multiplies first, and the row norms that bound their error.

On CPUs with AVX512_BF16, bfloat16 products run at about twice the float32 speed. The scan
makes the bfloat16 rows chunk by chunk from the stored ones, so they cost no memory beyond
8 bytes of norms per row; only anchors their error bound cannot rule out are recomputed in
float32 against the (dequantised) rows themselves. A row `a` is approximated by
`factor * b`, `b` its bfloat16 row (`row_factors`):

- float32 rows give their high halves: a float32's high 16 bits are a bfloat16, the value
  truncated toward zero, read in place. Truncation shrinks values by 2^-8 / (2 ln 2) of
  themselves on average (for log-uniform mantissas), so their factor is `SCALE`: the error
  bound then rests on `row - SCALE * halves`, about as small as rounding to nearest leaves.
- float16 rows are rounded to nearest (one compiled pass from their bits): factor 1.
- int8 rows give their codes, which bfloat16 holds exactly: factor the row's `int8_step`,
  and no error at all on the anchor's side. The scan multiplies each product by it.
"""

from __future__ import annotations

import math
import sys
import threading
import warnings
from typing import TYPE_CHECKING

import numpy as np
import torch
from numba import types
from numba.extending import overload

from asif.scan.compiled import float32_bits, half_to_float32, jit
from asif.scan.dequantise import int8_step
from asif.scan.parallel import in_parallel

if TYPE_CHECKING:
    from asif.scan.matrix import AnchorMatrix

FILL_ROWS = 65_536  # rows measured at a time: bounds the temporary float32 tensors
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


def _bfloat16_bits(stored: int) -> int:
    """A stored int8 code or float16 (bits) as the nearest bfloat16 (ties to even; int8
    codes exactly), as int16 bits (compiled per stored dtype below)."""
    raise NotImplementedError


@overload(_bfloat16_bits, inline="always")
def _bfloat16_bits_of(stored):  # numba: no annotations
    if stored == types.int8:  # at most 8 significant bits: the high half is exact
        return lambda stored: np.int16(float32_bits(np.float32(stored)) >> np.uint32(16))
    if stored == types.uint16:  # float16 bits

        def rounded(stored):
            bits = float32_bits(half_to_float32(stored))
            bits += np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))
            return np.int16(bits >> np.uint32(16))

        return rounded
    return None


@jit()
def _to_bfloat16(stored, out, first, last):
    """Rows first:last of int8 codes or float16 bits as bfloat16 bits, into `out`."""
    for row in range(first, last):
        for col in range(stored.shape[1]):
            out[row, col] = _bfloat16_bits(stored[row, col])


def bfloat16_rows(matrix: AnchorMatrix, start: int, stop: int, out: torch.Tensor) -> torch.Tensor:
    """Rows `start:stop` of `matrix` in bfloat16, written into the int16 buffer `out`: the
    high halves of float32 rows, float16 rows rounded to nearest, int8 codes.

    Their error is bounded by the residual norms of `RowNorms`, with `row_factors`.
    """
    if matrix.precision == "float32":
        return high_halves(shared_tensor(matrix.data[start:stop]), out)
    stored = matrix.data[start:stop]
    stored = stored.view(np.uint16) if matrix.precision == "float16" else stored
    bits = out[: stop - start].numpy()
    in_parallel(lambda first, last: _to_bfloat16(stored, bits, first, last), stop - start)
    return out[: stop - start].view(torch.bfloat16)


def bfloat16_scale(matrix: AnchorMatrix) -> float:
    """The factor between the scan's (bfloat16) products and similarities: `SCALE` for
    float32 rows, 1 for float16; 1 for int8 rows too, whose products the scan multiplies
    by their rows' factors (`row_factors`) itself."""
    return SCALE if matrix.precision == "float32" else 1.0


def int8_steps(matrix: AnchorMatrix) -> np.ndarray | None:
    """Per row of int8 anchors, its `int8_step` (its bfloat16 row's factor); else None."""
    return None if matrix.scale is None else int8_step(shared_tensor(matrix.scale)).numpy()


def row_factors(matrix: AnchorMatrix, start: int, stop: int) -> torch.Tensor:
    """Per row of `start:stop`, as a column: the factor of its bfloat16 row (see above)."""
    if matrix.scale is not None:
        return int8_step(shared_tensor(matrix.scale[start:stop]))[:, None]
    return torch.full((stop - start, 1), bfloat16_scale(matrix))


class RowNorms:
    """For rows `[:ready]` of a row buffer, filled on demand: `norm[i]`, the (dequantised)
    row's L2 norm, and `residual[i]`, that of `row - factor * bfloat16_rows(row)`.

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
        with self._lock:
            for start in range(self.ready, len(matrix), FILL_ROWS):
                end = min(start + FILL_ROWS, len(matrix))
                x = matrix.chunk(start, end)
                self.norm[start:end] = x.norm(dim=1)
                rows = bfloat16_rows(matrix, start, end, torch.empty(x.shape, dtype=torch.int16))
                factors = row_factors(matrix, start, end)
                self.residual[start:end] = (x - factors * rows.float()).norm(dim=1)
            self.ready = max(self.ready, len(matrix))

    def copy_rows(self, source: RowNorms, at: int, start: int, stop: int) -> None:
        """Rows `start:stop` of `source` (already measured) into rows `at:` of these norms."""
        n = stop - start
        self.norm[at : at + n] = source.norm[start:stop]
        self.residual[at : at + n] = source.residual[start:stop]
