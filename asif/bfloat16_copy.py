"""A bfloat16 copy of float32 anchor rows, with the row norms that bound its rounding error.

Exact scans multiply the queries with this copy first (on CPUs with AVX512_BF16, about twice
the float32 speed) and recompute in float32 only the anchors its error bound cannot rule out.
It costs 2 bytes per value on top of the float32 rows' 4.
"""

from __future__ import annotations

import threading
import warnings

import numpy as np
import torch

FILL_ROWS = 65_536  # rows converted at a time: bounds the temporary float32 tensors


def float32_tensor(rows: np.ndarray) -> torch.Tensor:
    """A tensor sharing `rows` (read-only memory maps included: the tensor is only read)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(np.ascontiguousarray(rows, dtype=np.float32))


class Bfloat16Copy:
    """Rows `[:ready]` of a float32 row buffer in bfloat16, filled on demand.

    `norm[i]` is the float32 row's L2 norm, `residual[i]` the norm of its rounding error
    `row - bfloat16(row)`. Rows of the buffer never change once written (see `_Storage`), so
    rows already converted stay valid for every matrix viewing the buffer.
    """

    def __init__(self, capacity: int, dim: int) -> None:
        self.rows = torch.empty((capacity, dim), dtype=torch.bfloat16)
        self.norm = torch.empty(capacity)
        self.residual = torch.empty(capacity)
        self.ready = 0
        self._lock = threading.Lock()

    def fill(self, data: np.ndarray, stop: int) -> None:
        """Convert rows `ready:stop` of `data`, the float32 buffer this copy follows."""
        with self._lock:
            for start in range(self.ready, stop, FILL_ROWS):
                end = min(start + FILL_ROWS, stop)
                x = float32_tensor(data[start:end])
                self.rows[start:end] = x  # rounds to nearest even
                self.norm[start:end] = x.norm(dim=1)
                self.residual[start:end] = (x - self.rows[start:end].float()).norm(dim=1)
            self.ready = max(self.ready, stop)

    def copy_rows(self, source: Bfloat16Copy, at: int, start: int, stop: int) -> None:
        """Rows `start:stop` of `source` (already converted) into rows `at:` of this copy."""
        n = stop - start
        self.rows[at : at + n] = source.rows[start:stop]
        self.norm[at : at + n] = source.norm[start:stop]
        self.residual[at : at + n] = source.residual[start:stop]
