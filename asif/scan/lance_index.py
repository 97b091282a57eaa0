"""Approximate top-k from a LanceDB vector index instead of the exact scan over all anchors.

Each query's k nearest anchors (by dot product of unit vectors) come from an IVF_PQ or
HNSW_SQ index on the table's `image_embedding` / `text_embedding` column; the values then get
ASIF's usual clamp, power and normalisation. The anchor embeddings are not held in memory:
only ids, captions and urls are, so the model fits however many anchors the table has.
Rows written after the index was built are still found (LanceDB scans unindexed rows).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyarrow as pa

from asif.errors import EmptyInputError
from asif.model import AnchorSet, AsifModel, checked_queries
from asif.model.relative import DEFAULT_K, DEFAULT_P, SparseRelative, normalize_rows
from asif.scan.matrix import AnchorMatrix
from asif.store.table import CAPTION, ID, IMAGE_EMBEDDING, TEXT_EMBEDDING, URL, AnchorTable

IndexKind = Literal["ivf_pq", "hnsw_sq"]
INDEX_KINDS: tuple[IndexKind, ...] = ("ivf_pq", "hnsw_sq")
COLUMNS = (IMAGE_EMBEDDING, TEXT_EMBEDDING)


def build_indexes(
    table: AnchorTable,
    kind: IndexKind = "ivf_pq",
    *,
    num_partitions: int | None = None,
    num_sub_vectors: int | None = None,
    replace: bool = True,
) -> None:
    """Build a dot-product vector index on both embedding columns (one new table version each)."""
    from lancedb.index import HnswSq, IvfPq

    for column in COLUMNS:
        if kind == "ivf_pq":
            config = IvfPq(
                distance_type="dot", num_partitions=num_partitions, num_sub_vectors=num_sub_vectors
            )
        elif kind == "hnsw_sq":
            config = HnswSq(distance_type="dot", num_partitions=num_partitions)
        else:
            raise ValueError(f"index kind must be one of {INDEX_KINDS}, got {kind!r}")
        table.lance_table.create_index(column, config=config, replace=replace)


def indexed_columns(table: AnchorTable) -> set[str]:
    """The embedding columns of `table` that have a vector index."""
    return {c for i in table.lance_table.list_indices() for c in i.columns if c in COLUMNS}


@dataclass(frozen=True)
class SearchSettings:
    """How hard the index looks: IVF partitions probed, exact re-ranking of k * refine rows."""

    nprobes: int = 32
    refine_factor: int | None = 2
    ef: int | None = None


def _placeholder(n: int, dim: int) -> AnchorMatrix:
    """An (n, dim) all-zero matrix that takes no memory (the embeddings stay in the table)."""
    return AnchorMatrix(np.broadcast_to(np.zeros((1, dim), np.float16), (n, dim)))


class ApproximateModel(AsifModel):
    """An AsifModel whose top-k anchors come from the table's vector indexes.

    Its `anchors` carry ids, captions and urls; their embedding matrices are zero
    placeholders, so use it for queries (classify, explain, retrieve), not to edit anchors.
    """

    def __init__(
        self, anchors: AnchorSet, *, table: AnchorTable, settings: SearchSettings, **kwargs
    ) -> None:
        super().__init__(anchors, **kwargs)
        self.table = table
        self.settings = settings

    @classmethod
    def from_table(
        cls,
        table: AnchorTable,
        *,
        settings: SearchSettings | None = None,
        k: int = DEFAULT_K,
        p: float = DEFAULT_P,
        **kwargs,
    ) -> ApproximateModel:
        """The model over `table` at its version; both embedding columns must be indexed."""
        missing = set(COLUMNS) - indexed_columns(table)
        if missing:
            raise ValueError(
                f"anchor table {table.dataset_uri} has no vector index on {sorted(missing)}; "
                "build them with asif.scan.lance_index.build_indexes(table)"
            )
        t = table.read([ID, URL, CAPTION])
        n = t.num_rows
        if not n:
            raise EmptyInputError(f"anchor table {table.dataset_uri} has no rows")
        anchors = AnchorSet(
            t.column(ID).to_pylist(),
            t.column(CAPTION).to_pylist(),
            t.column(URL).to_pylist(),
            _placeholder(n, table.image_dim),
            _placeholder(n, table.text_dim),
        )
        return cls(
            anchors,
            table=table,
            settings=settings or SearchSettings(),
            image_encoder_name=table.image_encoder,
            text_encoder_name=table.text_encoder,
            k=k,
            p=p,
            **kwargs,
        )

    def _relative(self, x: np.ndarray, anchors: AnchorMatrix, kind: str) -> SparseRelative:
        x = checked_queries(x, anchors, kind)
        column = IMAGE_EMBEDDING if kind == "image" else TEXT_EMBEDDING
        kk = min(self.k, len(self.anchors))
        rows, sims = self.search(normalize_rows(x), column, kk)
        values = np.clip(sims, 0, None) ** self.p
        norms = np.linalg.norm(values, axis=1, keepdims=True)
        values = values / np.maximum(norms, np.finfo(np.float32).tiny)
        return SparseRelative(rows, values.astype(np.float32), len(self.anchors))

    def search(self, queries: np.ndarray, column: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows, similarities), each (n, k), best first, from the index on `column`.

        A query the index answers with fewer than k anchors is padded with other anchors at
        similarity 0 (they add nothing to any score).
        """
        s = self.settings
        query = (
            self.table.lance_table.search(queries, vector_column_name=column)
            .distance_type("dot")
            .limit(k)
            .nprobes(s.nprobes)
            .select([ID])
        )
        if s.refine_factor:
            query = query.refine_factor(s.refine_factor)
        if s.ef:
            query = query.ef(s.ef)
        hits: pa.Table = query.to_arrow()
        rows = np.zeros((len(queries), k), dtype=np.int64)
        sims = np.zeros((len(queries), k), dtype=np.float32)
        which = hits.column("query_index").to_numpy() if len(queries) > 1 else None
        found = self.anchors.rows(hits.column(ID).to_pylist())
        similarity = 1.0 - hits.column("_distance").to_numpy()
        for q in range(len(queries)):
            mine = slice(None) if which is None else which == q
            r, v = found[mine][:k], similarity[mine][:k]
            order = np.argsort(-v, kind="stable")
            rows[q, : len(r)], sims[q, : len(r)] = r[order], v[order]
            if len(r) < k:
                others = np.arange(min(len(self.anchors), k + len(r)))
                rows[q, len(r) :] = np.setdiff1d(others, r)[: k - len(r)]
        return rows, sims


def topk_overlap(approx: SparseRelative, exact: SparseRelative) -> float:
    """Mean fraction of each query's exact top-k anchors that the approximate top-k also has."""
    overlaps = [
        len(np.intersect1d(a, e)) / max(len(e), 1)
        for a, e in zip(approx.indices, exact.indices, strict=True)
    ]
    return float(np.mean(overlaps))
