"""Exact top-k cosine similarities: a bfloat16 product over all anchors, float32 for a few.

Each query is multiplied with the anchors' bfloat16 rows (`bfloat16_rows`, made from the
float32, float16 or int8 rows chunk by chunk), about twice as fast as float32 on CPUs with
AVX512_BF16. A rigorous bound on the difference to the float32 similarity then rules out
all but the anchors near the query's k-th best (`Selection`: about 2 times k on random
768-d data). Their similarities are recomputed in float32 from the (dequantised) rows
(`rescore`, which reads each row once for all the queries naming it, so rescoring them all
costs less than a second pass for a few); the top k of them is exact.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from asif.scan.bfloat16_rows import bfloat16_rows, bfloat16_scale, int8_steps
from asif.scan.descending import best_first
from asif.scan.matrix import AnchorMatrix
from asif.scan.rescore import rescore
from asif.scan.scratch import scratch
from asif.scan.selection import Selection

OUTPUT_ROUNDING = 2.0**-8 * 1.01  # a bfloat16 product's relative error from its rounded output
MAX_CANDIDATES = 16  # a query's room, in multiples of k: over half of it, give up (near-ties)


@functools.cache
def native_bfloat16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AVX512_BF16 or AMX; Linux only).

    Elsewhere bfloat16 products are emulated, slower than float32: the scan is no gain.
    """
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _error_bound(
    q: torch.Tensor, qb: torch.Tensor, norm: float, residual: float, scale: float
) -> torch.Tensor:
    """Per query, a bound on |float32 q.a - scale * bfloat16 product before output rounding|.

    q.a - scale qb.ab = (q - qb).a + qb.(a - scale ab): Cauchy-Schwarz with the largest anchor
    `norm` and `residual` (`RowNorms`); plus float32 summation error, d * 2^-24 relative, for
    both products. `scale` is `bfloat16_scale` (at least 1).
    """
    qf = qb.float()
    qf_norm = qf.norm(dim=1)
    summation = 2 * scale * q.shape[1] * 2.0**-24 * (q.norm(dim=1) + qf_norm) * (norm + residual)
    bound = (q - qf).norm(dim=1) * norm + qf_norm * residual + summation
    return bound * 1.01 + 1e-6  # margin for the float32 arithmetic of the bound itself


def _candidates(
    qb: torch.Tensor,
    anchors: AnchorMatrix,
    steps: np.ndarray | None,
    bound: torch.Tensor,
    k: int,
    chunk_size: int,
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Per query, in index order, every anchor that may be among the k best (-inf padded).

    An anchor with product y (int8 rows: times the row's `steps`, `row_factors`) has a
    similarity within scale (y +- OUTPUT_ROUNDING |y|) +- bound; k anchors are known to
    reach the k-th largest product's lower end, so an anchor whose upper end is below it is
    out. Dividing by scale >= 1, the test is y + OUTPUT_ROUNDING |y| >= kth -
    OUTPUT_ROUNDING |kth| - 2 bound / scale; the undivided bound makes it no narrower:
    `Selection` with margins 2 bound. Returns None when a query keeps more than
    MAX_CANDIDATES / 2 * k of them (at least 2048).
    """
    n, width = len(qb), min(chunk_size, len(anchors))
    margins = (2 * bound).double().numpy()
    capacity = max(MAX_CANDIDATES * k, 4096)
    with (
        scratch(((width, anchors.dim), torch.int16), ((n * width,), torch.bfloat16)) as (
            buffer,
            products,
        ),
        Selection(n, k, False, capacity, margins, OUTPUT_ROUNDING, steps) as selection,
    ):
        for start in range(0, len(anchors), chunk_size):
            rows = bfloat16_rows(anchors, start, min(start + chunk_size, len(anchors)), buffer)
            y = products[: n * len(rows)].view(n, len(rows))
            torch.mm(qb, rows.T, out=y)
            if not selection.keep(y, start):
                return None
        return selection.result()


def bfloat16_topk(
    queries: np.ndarray, anchors: AnchorMatrix, k: int, chunk_size: int
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Exact top-k (values descending, ties to the lower index) of unit `queries` against
    `anchors` (dequantised), as (values, indices) tensors; None if the bound rules too few out.
    """
    norms = anchors.row_norms()
    q = torch.from_numpy(queries)
    qb = q.bfloat16()
    norm = float(norms.norm[: len(anchors)].max())
    residual = float(norms.residual[: len(anchors)].max())
    bound = _error_bound(q, qb, norm, residual, bfloat16_scale(anchors))
    steps = int8_steps(anchors)
    found = _candidates(qb, anchors, steps, bound, k, chunk_size)
    if found is None:
        return None
    values, indices = found
    # every anchor at or above the k-th float32 similarity is a candidate (bound), all rows
    # hold at least k, in index order: a stable sort by value breaks ties by index
    exact = rescore(q, anchors, steps, indices, torch.isfinite(values))
    return best_first(exact, indices, k)
