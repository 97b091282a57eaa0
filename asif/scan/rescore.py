"""float32 similarities of each query with a few chosen anchor rows, read where they lie.

The bfloat16 scan leaves about 1.4 k rows per query to recompute in float32, scattered over
all N: at 100k x 768 anchors and 256 queries, 0.9 GB of rows if each query reads its own.
The compiled loops here (numba) take the (query, row) pairs in row order instead (a
counting sort by row bucket), so a row is read from memory once and summed with every
query that names it while it is in cache (measured: twice as fast at 100k x 768, 1.25
times at 1M). Each row is dequantised in registers (float16 by the CPU's conversion
instruction, int8 codes times their row's `int8_step`) and only the sum is kept. So
float16 and int8 rows, fewer bytes, rescore faster than float32 ones.

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

from asif.scan.compiled import half_to_float32, jit
from asif.scan.matrix import AnchorMatrix
from asif.scan.parallel import in_parallel

FAST = {"reassoc", "contract"}  # the sum in vector lanes, in a fixed order for every pair
BUCKET = 6  # pairs are taken in order of row >> BUCKET: 64 rows, 192 KiB at d = 768 in float32


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


@jit()
def _pairs_by_row(indices, valid, shift):
    """The flat positions (i * width + j) of the valid pairs, ordered by row >> shift."""
    counts = np.zeros((indices.max() >> shift) + 2 if indices.size else 1, np.int64)
    for i in range(indices.shape[0]):
        for j in range(indices.shape[1]):
            if valid[i, j]:
                counts[(indices[i, j] >> shift) + 1] += 1
    counts = np.cumsum(counts)
    pairs = np.empty(counts[-1], np.int64)
    for i in range(indices.shape[0]):
        for j in range(indices.shape[1]):
            if valid[i, j]:
                bucket = indices[i, j] >> shift
                pairs[counts[bucket]] = i * indices.shape[1] + j
                counts[bucket] += 1
    return pairs


@jit(fastmath=FAST)
def _dots(rows, steps, queries, indices, pairs, out, first, last):
    """out[i, j] = queries[i] . row indices[i, j] for the pairs first:last."""
    for at in range(first, last):
        i, j = divmod(pairs[at], indices.shape[1])
        query, row = queries[i], indices[i, j]
        total = np.float32(0.0)
        for col in range(rows.shape[1]):
            total += _element(rows, steps, row, col) * query[col]
        out[i, j] = total


def rescore(
    queries: torch.Tensor,
    anchors: AnchorMatrix,
    steps: np.ndarray | None,
    indices: torch.Tensor,
    valid: torch.Tensor,
) -> torch.Tensor:
    """float32 similarities of each query with its candidate anchors at `indices` (-inf
    where not `valid`); `steps`, int8 anchors' `int8_step` per row (None for others)."""
    rows = anchors.data.view(np.uint16) if anchors.precision == "float16" else anchors.data
    steps = np.ones(1, np.float32) if steps is None else steps
    q, rows_at = queries.numpy(), indices.numpy()
    pairs = _pairs_by_row(rows_at, valid.numpy(), BUCKET)
    out = np.full(indices.shape, -np.inf, dtype=np.float32)
    in_parallel(
        lambda first, last: _dots(rows, steps, q, rows_at, pairs, out, first, last), len(pairs)
    )
    return torch.from_numpy(out)
