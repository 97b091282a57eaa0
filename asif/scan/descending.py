"""Each query's similarities in descending order, ties in index order: the scans' last step.

A compiled LSD radix sort (numba) of the float32 values' bits, 8 bits a pass: about 5 times
faster than numpy's stable argsort on a scan's rows (800 to 2,000 entries a query), and
stable, so entries given in index order keep ties in index order. -0.0 ranks as 0.0;
values must not be NaN (no scan keeps one).
"""

from __future__ import annotations

import numpy as np
import torch

from asif.scan.compiled import float32_bits, jit
from asif.scan.parallel import in_parallel

DIGIT = 8  # bits sorted a pass: 4 passes over 256 counts, few for rows of a few thousand


@jit(inline="always")
def _key(value):
    """A uint32 that orders float32 values descending as integers ascend."""
    bits = float32_bits(value)
    if bits == np.uint32(0x80000000):  # -0.0: equal to 0.0, so it may not rank after it
        bits = np.uint32(0)
    return bits if bits >= np.uint32(0x80000000) else bits ^ np.uint32(0x7FFFFFFF)


@jit()
def sort_descending(values, indices):
    """Sort `values` (float32) descending in place, `indices` along; stable."""
    n = len(values)
    keys, order = np.empty(n, np.uint32), np.arange(n)
    spare_keys, spare_order = np.empty(n, np.uint32), np.empty(n, np.int64)
    counts = np.empty(1 << DIGIT, np.int64)
    for at in range(n):
        keys[at] = _key(values[at])
    for shift in range(0, 32, DIGIT):
        counts[:] = 0
        for at in range(n):
            counts[(keys[at] >> np.uint32(shift)) & np.uint32(counts.size - 1)] += 1
        if counts.max() == n:  # one digit for all: this pass would move nothing
            continue
        total = 0
        for digit in range(counts.size):
            total, counts[digit] = total + counts[digit], total
        for at in range(n):
            digit = (keys[at] >> np.uint32(shift)) & np.uint32(counts.size - 1)
            spare_keys[counts[digit]], spare_order[counts[digit]] = keys[at], order[at]
            counts[digit] += 1
        keys, spare_keys, order, spare_order = spare_keys, keys, spare_order, order
    values[:] = values[order]
    indices[:] = indices[order]


@jit()
def _first_k(values, indices, k, out_values, out_indices, first, last):
    """Rows first:last: the k best of each row of (values, indices), best first."""
    for i in range(first, last):
        row_values, row_indices = values[i].copy(), indices[i].copy()
        sort_descending(row_values, row_indices)
        out_values[i], out_indices[i] = row_values[:k], row_indices[:k]


def best_first(
    values: torch.Tensor, indices: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row, the k largest `values` (float32) and their `indices`, best first; of equal
    values, those earlier in the row first."""
    v, i = values.numpy(), indices.numpy()
    out_values = np.empty((len(v), k), np.float32)
    out_indices = np.empty((len(v), k), np.int64)
    in_parallel(lambda first, last: _first_k(v, i, k, out_values, out_indices, first, last), len(v))
    return torch.from_numpy(out_values), torch.from_numpy(out_indices)
