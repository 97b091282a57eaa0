"""ASIF's sparse relative representation, with an exact top-k streamed over anchor chunks.

r(x): cosine similarities of x to the N anchors, keep the k largest (ties go to the lower
anchor index), clamp negatives to 0, raise to the power p, L2-normalise. Only the k kept
(index, value) pairs are ever materialised, and at most `chunk_size` similarities per query.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from asif.errors import DimensionMismatchError, EmptyInputError, require_finite
from asif.scan.bfloat16 import bfloat16_topk, native_bfloat16
from asif.scan.matrix import AnchorMatrix
from asif.scan.row_entries import entries_passing, padded_by_row

DEFAULT_K = 800
DEFAULT_P = 8.0
DEFAULT_CHUNK = 100_000
QUERY_BATCH = 512
BFLOAT16_MIN_ANCHORS = 200_000  # from here on, float32 anchors are scanned in bfloat16 first


@dataclass(frozen=True)
class SparseRelative:
    """Rows of r(x): for each query, `indices` of the kept anchors and their `values`.

    Both are (n, min(k, N)); within a row the values are in descending order.
    """

    indices: np.ndarray
    values: np.ndarray
    n_anchors: int

    def __len__(self) -> int:
        return self.indices.shape[0]

    def __getitem__(self, rows: int | slice | np.ndarray) -> SparseRelative:
        rows = np.atleast_1d(np.arange(len(self))[rows])
        return SparseRelative(self.indices[rows], self.values[rows], self.n_anchors)

    def to_csr(self) -> sp.csr_matrix:
        """As an (n, N) scipy CSR matrix."""
        n, kk = self.indices.shape
        indptr = np.arange(0, n * kk + 1, kk, dtype=np.int64)
        return sp.csr_matrix(
            (self.values.ravel(), self.indices.ravel(), indptr), shape=(n, self.n_anchors)
        )

    def to_dense(self) -> np.ndarray:
        """As a dense (n, N) float32 array (for small N and tests)."""
        return self.to_csr().toarray().astype(np.float32, copy=False)


def normalize_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero), as float32."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def _stable_topk(
    scores: torch.Tensor, offsets: torch.Tensor, k: int, index_ordered: bool = False
) -> tuple[torch.Tensor, ...]:
    """Top-k of each row by (value descending, index ascending): deterministic under ties.

    With `index_ordered`, equal values already stand in index order: one stable sort suffices.
    """
    if not index_ordered:
        by_index = torch.argsort(offsets, dim=1, stable=True)
        scores, offsets = scores.gather(1, by_index), offsets.gather(1, by_index)
    by_value = torch.argsort(scores, dim=1, descending=True, stable=True)[:, :k]
    return scores.gather(1, by_value), offsets.gather(1, by_value)


def _chunk_topk(sims: torch.Tensor, k: int, start: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k of a chunk's similarities; rows tied at the k-th value are resolved by index.

    One more than k is taken: where the (k+1)-th value differs from the k-th, the top-k set is
    unique and the (k+1)-th is dropped; only rows tied across the boundary are redone exactly.
    """
    n, width = sims.shape
    if k == width:
        return sims.clone(), torch.arange(width).expand(n, width) + start
    values, idx = torch.topk(sims, k + 1, dim=1, sorted=False)
    last = values.argmin(dim=1, keepdim=True)
    tied = (values == values.gather(1, last)).sum(dim=1) > 1
    keep = torch.ones_like(values, dtype=torch.bool).scatter_(1, last, False)
    values, idx = values[keep].view(n, k), idx[keep].view(n, k)
    for row in torch.nonzero(tied).flatten().tolist():
        kth = values[row].min()
        above = torch.nonzero(sims[row] > kth).flatten()
        at_kth = torch.nonzero(sims[row] == kth).flatten()[: k - len(above)]
        idx[row] = torch.cat([above, at_kth])
        values[row] = sims[row, idx[row]]
    return values, idx + start


def _above_threshold(sims: torch.Tensor, kth: torch.Tensor, start: int) -> tuple[torch.Tensor, ...]:
    """Each row's entries strictly above its current k-th best, padded with -inf to one width.

    Only these can enter the top-k: an entry equal to the k-th best comes from a later chunk,
    so it has a higher index and loses the tie.
    """
    rows, cols = entries_passing(sims, kth, strict=True)
    return padded_by_row(rows, cols, sims[rows, cols], start, len(sims))


@contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Run this thread's torch ops single-threaded (OpenMP's thread count is per thread).

    Between OpenBLAS products, torch's spinning OpenMP workers would take cores from
    OpenBLAS's own and the other way round; torch's share of the work here is small.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _topk_scan(
    queries: np.ndarray, anchors: AnchorMatrix, k: int, chunk_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact top-k cosine similarities of `queries` against all anchors, chunk by chunk.

    Once k anchors are held, a chunk only contributes the entries above the running k-th
    best, which after the first chunk are few: a threshold test replaces most of the top-k.
    """
    n = len(queries)
    best_v = torch.empty((n, 0), dtype=torch.float32)
    best_i = torch.empty((n, 0), dtype=torch.int64)
    buffer = np.empty(n * min(chunk_size, len(anchors)), dtype=np.float32)
    for start in range(0, len(anchors), chunk_size):
        stop = min(start + chunk_size, len(anchors))
        sims = buffer[: n * (stop - start)].reshape(n, stop - start)
        # numpy's OpenBLAS: its AVX-512 sgemm is ~1.6x torch's MKL one on AMD CPUs
        np.matmul(queries, anchors.chunk(start, stop).numpy().T, out=sims)
        sims = torch.from_numpy(sims)
        ordered = best_v.shape[1] == k
        if ordered:  # best is in (value, index) order, the new entries in index order
            v, i = _above_threshold(sims, best_v[:, -1], start)
            ordered = v.shape[1] <= 4 * k  # else a top-k of the chunk is cheaper to merge
        if not ordered:
            v, i = _chunk_topk(sims, min(k, stop - start), start)
        best_v, best_i = _stable_topk(
            torch.cat([best_v, v], 1), torch.cat([best_i, i], 1), k, index_ordered=ordered
        )
    return best_v, best_i


def relative_representation(
    queries: np.ndarray,
    anchors: AnchorMatrix | np.ndarray,
    k: int = DEFAULT_K,
    p: float = DEFAULT_P,
    chunk_size: int = DEFAULT_CHUNK,
    bfloat16: bool | None = None,
) -> SparseRelative:
    """r(x) for each row of `queries` (n, d) against `anchors` (N, d).

    Queries are L2-normalised here; anchors are expected unit-norm. Memory stays within
    about `QUERY_BATCH * chunk_size` similarities, whatever N is. `bfloat16` scans float32
    anchors with `bfloat16_topk` (same result; by default from BFLOAT16_MIN_ANCHORS anchors
    on CPUs that multiply bfloat16 natively), else all similarities are computed in float32.
    """
    if not isinstance(anchors, AnchorMatrix):
        anchors = AnchorMatrix.from_float(anchors)
    queries = np.asarray(queries, dtype=np.float32)
    if queries.ndim != 2 or queries.shape[1] != anchors.dim:
        raise DimensionMismatchError(
            f"query embeddings have shape {queries.shape}, anchors have dimension {anchors.dim}"
        )
    require_finite(queries, "query embeddings")
    if len(anchors) == 0:
        raise EmptyInputError("the anchor set is empty: add anchor pairs first")
    if k < 1 or chunk_size < 1:
        raise ValueError(f"k and chunk_size must be positive, got k={k}, chunk_size={chunk_size}")
    if bfloat16 is None:
        bfloat16 = len(anchors) >= BFLOAT16_MIN_ANCHORS and native_bfloat16()
    bfloat16 = bfloat16 and anchors.precision == "float32"
    kk = min(k, len(anchors))
    indices = np.empty((len(queries), kk), dtype=np.int64)
    values = np.empty((len(queries), kk), dtype=np.float32)
    for start in range(0, len(queries), QUERY_BATCH):
        q = normalize_rows(queries[start : start + QUERY_BATCH])
        found = bfloat16_topk(q, anchors, kk, chunk_size) if bfloat16 else None
        with _one_torch_thread():
            v, i = found if found is not None else _topk_scan(q, anchors, kk, chunk_size)
            v = v.clamp_(min=0).pow_(p)
            v = v / v.norm(dim=1, keepdim=True).clamp_(min=torch.finfo(torch.float32).tiny)
        values[start : start + len(q)] = v.numpy()
        indices[start : start + len(q)] = i.numpy()
    return SparseRelative(indices, values, len(anchors))


def similarity(a: SparseRelative, b: SparseRelative) -> np.ndarray:
    """The (len(a), len(b)) inner products <r(x), r(y)>."""
    if a.n_anchors != b.n_anchors:
        raise DimensionMismatchError(
            f"relative representations over {a.n_anchors} and {b.n_anchors} anchors"
        )
    return (a.to_csr() @ b.to_csr().T).toarray().astype(np.float32, copy=False)
