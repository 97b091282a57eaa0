"""ASIF's sparse relative representation r(x), over any top-k backend.

r(x): cosine similarities of x to the N anchors, keep the k largest (ties go to the lower
anchor index), clamp negatives to 0, raise to the power p, L2-normalise. The backend
(`asif.scan`) finds the k largest; this module checks the queries and finishes them, once
for every backend.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from asif.errors import DimensionMismatchError, EmptyInputError, require_finite
from asif.model.settings import DEFAULT_K, DEFAULT_P
from asif.scan.base import Modality, TopK
from asif.scan.exact import DEFAULT_CHUNK, ExactScan
from asif.scan.matrix import AnchorMatrix


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


def checked_queries(x: np.ndarray, dim: int, modality: str) -> np.ndarray:
    """`x` as float32 (n, d) rows, or a clear error if d is not the anchors' width `dim`."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != dim:
        raise DimensionMismatchError(
            f"{modality} embeddings have shape {x.shape}; the anchors' {modality} embeddings "
            f"are {dim}-d"
        )
    require_finite(x, f"{modality} embeddings")
    return x


def finish(similarities: np.ndarray, p: float) -> np.ndarray:
    """The kept similarities clamped at 0, raised to `p` and L2-normalised per row.

    Computed in float64 after dividing by each row's largest value (the result does not
    depend on the scale), so small similarities do not underflow at large p.
    """
    v = np.clip(np.asarray(similarities, dtype=np.float64), 0.0, None)
    v /= np.maximum(v.max(axis=1, keepdims=True, initial=0.0), np.finfo(np.float64).tiny)
    v **= p
    v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), np.finfo(np.float64).tiny)
    return v.astype(np.float32)


def relative(
    scan: TopK, queries: np.ndarray, modality: Modality, k: int, p: float
) -> SparseRelative:
    """r(x) of each row of `queries` (normalised here) against `scan`'s `modality` anchors."""
    q = checked_queries(queries, scan.dim(modality), modality)
    if scan.n_live == 0:
        raise EmptyInputError("the anchor set is empty: add anchor pairs first")
    sims, rows = scan.topk(normalize_rows(q), modality, k)
    return SparseRelative(rows, finish(sims, p), scan.n_rows)


def relative_representation(
    queries: np.ndarray,
    anchors: AnchorMatrix | np.ndarray,
    k: int = DEFAULT_K,
    p: float = DEFAULT_P,
    chunk_size: int = DEFAULT_CHUNK,
    bfloat16: bool | None = None,
) -> SparseRelative:
    """r(x) of `queries` (n, d) against one unit-norm anchor matrix (N, d), scanned exactly."""
    if not isinstance(anchors, AnchorMatrix):
        anchors = AnchorMatrix.from_float(anchors)
    queries = checked_queries(queries, anchors.dim, "query")  # named for this caller
    return relative(ExactScan(anchors, anchors, chunk_size, bfloat16), queries, "image", k, p)


def similarity(a: SparseRelative, b: SparseRelative) -> np.ndarray:
    """The (len(a), len(b)) inner products <r(x), r(y)>."""
    if a.n_anchors != b.n_anchors:
        raise DimensionMismatchError(
            f"relative representations over {a.n_anchors} and {b.n_anchors} anchors"
        )
    return (a.to_csr() @ b.to_csr().T).toarray().astype(np.float32, copy=False)


def topk_overlap(approx: SparseRelative, exact: SparseRelative) -> float:
    """Mean fraction of each query's exact top-k anchors that the approximate top-k also has."""
    overlaps = [
        len(np.intersect1d(a, e)) / max(len(e), 1)
        for a, e in zip(approx.indices, exact.indices, strict=True)
    ]
    return float(np.mean(overlaps))
