"""Per-row threshold tests and padding shared by the streamed top-k scans."""

from __future__ import annotations

import torch

BLOCK = 32  # columns per block of the threshold test in `entries_passing`


def block_maxima(x: torch.Tensor) -> torch.Tensor:
    """Per row, the maximum of each block of `BLOCK` columns (the width is a multiple of it)."""
    n, width = x.shape
    return x.view(n, width // BLOCK, BLOCK).amax(2)


def entries_passing(
    x: torch.Tensor, threshold: torch.Tensor, strict: bool, maxima: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(row, column) of the entries above (`strict`) or at least their row's `threshold`.

    Row-major order. Blocks of `BLOCK` columns are first tested by their maximum (`maxima`, if
    already known, is `block_maxima(x)`): few blocks pass, so most of `x` is read once, by a
    fast reduction, instead of compared entry by entry.
    """
    passes = torch.gt if strict else torch.ge
    n, width = x.shape
    if width % BLOCK:
        rows, cols = torch.nonzero(passes(x, threshold[:, None]), as_tuple=True)
        return rows, cols
    blocks = width // BLOCK
    maxima = block_maxima(x) if maxima is None else maxima
    # flat positions and index_select: much faster than advanced indexing on 2-d tensors
    block = torch.nonzero(passes(maxima, threshold[:, None]).view(-1)).view(-1)
    entries = torch.index_select(x.view(n * blocks, BLOCK), 0, block)
    rows = block // blocks
    hit, offset = torch.nonzero(passes(entries, threshold[rows, None]), as_tuple=True)
    block, rows = block[hit], rows[hit]
    return rows, (block - rows * blocks) * BLOCK + offset


def padded_by_row(
    rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor, start: int, n: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Row-major entries as (n, width) values (padded with -inf) and anchor indices."""
    counts = torch.bincount(rows, minlength=n)
    width = int(counts.max()) if len(rows) else 0
    row_start = width * torch.arange(n) - (torch.cumsum(counts, 0) - counts)
    position = torch.arange(len(rows)) + row_start[rows]  # in the flattened (n, width) output
    out = torch.full((n * width,), -torch.inf).index_copy_(0, position, values)
    indices = torch.zeros(n * width, dtype=torch.int64).index_copy_(0, position, cols + start)
    return out.view(n, width), indices.view(n, width)
