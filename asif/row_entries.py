"""Per-row threshold tests and padding shared by the streamed top-k scans."""

from __future__ import annotations

import torch

BLOCK = 32  # columns per block of the threshold test in `entries_passing`


def entries_passing(
    x: torch.Tensor, threshold: torch.Tensor, strict: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """(row, column) of the entries above (`strict`) or at least their row's `threshold`.

    Row-major order. Blocks of `BLOCK` columns are first tested by their maximum: few blocks
    pass, so most of `x` is read once, by a fast reduction, instead of compared entry by entry.
    """
    passes = torch.gt if strict else torch.ge
    n, width = x.shape
    if width % BLOCK:
        return torch.nonzero(passes(x, threshold[:, None]), as_tuple=True)
    blocked = x.view(n, width // BLOCK, BLOCK)
    rows, blocks = torch.nonzero(passes(blocked.amax(2), threshold[:, None]), as_tuple=True)
    hit, offset = torch.nonzero(passes(blocked[rows, blocks], threshold[rows, None]), as_tuple=True)
    return rows[hit], blocks[hit] * BLOCK + offset


def padded_by_row(
    rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor, start: int, n: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Row-major entries as (n, width) values (padded with -inf) and anchor indices."""
    counts = torch.bincount(rows, minlength=n)
    width = int(counts.max()) if len(rows) else 0
    position = torch.arange(len(rows)) - (torch.cumsum(counts, 0) - counts)[rows]
    out = torch.full((n, width), -torch.inf)
    indices = torch.zeros((n, width), dtype=torch.int64)
    out[rows, position] = values
    indices[rows, position] = cols + start
    return out, indices
