"""float32 similarities of each query with a few chosen anchor rows, read where they lie.

The bfloat16 scan leaves about 1.4 k rows per query to recompute in float32: at 100k x 768
anchors and 256 queries, 0.9 GB of scattered rows. Gathering them into a buffer first
(`index_select`), then multiplying, moves each byte three times; the compiled loop here
(numba) reads each row once, dequantises it in registers (float16 by the CPU's conversion
instruction, int8 codes times their row's `int8_step`) and keeps only the sum. So float16
and int8 rows, fewer bytes, rescore faster than float32 ones.

Sums run in vector lanes: they differ from a float32 product of the dequantised rows by
summation rounding only (as two BLAS libraries do). Every (query, row) pair is summed by
the same instructions in the same order, whatever the row's position: equal rows get equal
values, so ties stay ties.
"""

from __future__ import annotations

import numpy as np
import torch
from numba import types
from numba.extending import overload

from asif.scan.bfloat16_rows import shared_tensor
from asif.scan.compiled import half_to_float32, jit
from asif.scan.dequantise import int8_step
from asif.scan.matrix import AnchorMatrix
from asif.scan.parallel import in_parallel

FAST = {"reassoc", "contract"}  # the sum in vector lanes, in a fixed order for every pair


def _element(rows: np.ndarray, steps: np.ndarray, row: int, col: int) -> float:
    """Element (row, col) of the stored rows as float32 (compiled per dtype below)."""
    raise NotImplementedError


@overload(_element, inline="always")
def _element_of(rows, steps, row, col):  # numba: no annotations
    if rows.dtype == types.float32:
        return lambda rows, steps, row, col: rows[row, col]
    if rows.dtype == types.uint16:  # float16 bits: numba has no float16 arrays
        return lambda rows, steps, row, col: half_to_float32(rows[row, col])
    if rows.dtype == types.int8:
        return lambda rows, steps, row, col: np.float32(rows[row, col]) * steps[row]
    return None


@jit(fastmath=FAST)
def _dots(rows, steps, queries, indices, valid, out, first, last):
    """out[i, j] = queries[i] . row indices[i, j], where valid, for queries first:last."""
    dim = rows.shape[1]
    for i in range(first, last):
        query = queries[i]
        for j in range(indices.shape[1]):
            if valid[i, j]:
                row = indices[i, j]
                total = np.float32(0.0)
                for col in range(dim):
                    total += _element(rows, steps, row, col) * query[col]
                out[i, j] = total


def rescore(
    queries: torch.Tensor, anchors: AnchorMatrix, indices: torch.Tensor, valid: torch.Tensor
) -> torch.Tensor:
    """float32 similarities of each query with its candidate anchors at `indices` (-inf
    where not `valid`)."""
    rows = anchors.data.view(np.uint16) if anchors.precision == "float16" else anchors.data
    steps = np.ones(1, np.float32)
    if anchors.scale is not None:
        steps = int8_step(shared_tensor(anchors.scale)).numpy()
    q = queries.numpy()
    rows_at, valid_at = indices.numpy(), valid.numpy()
    out = np.full(indices.shape, -np.inf, dtype=np.float32)
    in_parallel(
        lambda first, last: _dots(rows, steps, q, rows_at, valid_at, out, first, last), len(q)
    )
    return torch.from_numpy(out)
