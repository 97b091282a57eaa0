"""Approximate top-k from a LanceDB vector index instead of the exact scan over all anchors.

Each query's k nearest anchors (by dot product of unit vectors) come from an IVF_PQ or
HNSW_SQ index on the table's `image_embedding` / `text_embedding` column. The anchor
embeddings are not held in memory, so a model over this backend fits however many anchors
the table has; it answers queries but cannot be edited. Rows written after the index was
built are still found (LanceDB scans unindexed rows).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pyarrow as pa

from asif.errors import SettingsError
from asif.scan.base import Modality
from asif.store.schema import ID, IMAGE_EMBEDDING, TEXT_EMBEDDING
from asif.store.table import AnchorTable

IndexKind = Literal["ivf_pq", "hnsw_sq"]
INDEX_KINDS: tuple[IndexKind, ...] = ("ivf_pq", "hnsw_sq")
COLUMNS = {"image": IMAGE_EMBEDDING, "text": TEXT_EMBEDDING}


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

    for column in COLUMNS.values():
        config: IvfPq | HnswSq
        if kind == "ivf_pq":
            config = IvfPq(
                distance_type="dot", num_partitions=num_partitions, num_sub_vectors=num_sub_vectors
            )
        elif kind == "hnsw_sq":
            config = HnswSq(distance_type="dot", num_partitions=num_partitions)
        else:
            raise SettingsError(f"index kind must be one of {INDEX_KINDS}, got {kind!r}")
        table.lance_table.create_index(column, config=config, replace=replace)


def indexed_columns(table: AnchorTable) -> set[str]:
    """The embedding columns of `table` that have a vector index."""
    return {c for i in table.lance_table.list_indices() for c in i.columns if c in COLUMNS.values()}


@dataclass(frozen=True)
class SearchSettings:
    """How hard the index looks: IVF partitions probed, exact re-ranking of k * refine rows."""

    nprobes: int = 32
    refine_factor: int | None = 2
    ef: int | None = None


@dataclass(frozen=True)
class IndexScan:
    """The index backend: `ids` are the anchor rows in model order (ids the index returns
    are mapped to them); both embedding columns of `table` must be indexed."""

    table: AnchorTable
    ids: Sequence[str]
    search_settings: SearchSettings = SearchSettings()
    _row: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        missing = set(COLUMNS.values()) - indexed_columns(self.table)
        if missing:
            raise SettingsError(
                f"anchor table {self.table.dataset_uri} has no vector index on "
                f"{sorted(missing)}; build them with asif.scan.lance_index.build_indexes(table)"
            )
        object.__setattr__(self, "_row", {a: i for i, a in enumerate(self.ids)})

    @property
    def n_rows(self) -> int:
        return len(self.ids)

    @property
    def n_live(self) -> int:
        return len(self.ids)

    @property
    def precision(self) -> str:
        return "index"

    def dim(self, modality: Modality) -> int:
        return self.table.image_dim if modality == "image" else self.table.text_dim

    def topk(
        self, queries: np.ndarray, modality: Modality, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        rows, sims = self.search(queries, COLUMNS[modality], min(k, self.n_rows))
        return sims, rows

    def search(self, queries: np.ndarray, column: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows, similarities), each (n, k), best first, from the index on `column`.

        A query the index answers with fewer than k anchors is padded with other anchors at
        similarity 0 (they add nothing to any score).
        """
        s = self.search_settings
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
        found = np.array([self._row[i] for i in hits.column(ID).to_pylist()], dtype=np.int64)
        similarity = 1.0 - hits.column("_distance").to_numpy()
        for q in range(len(queries)):
            mine = slice(None) if which is None else which == q
            r, v = found[mine][:k], similarity[mine][:k]
            order = np.argsort(-v, kind="stable")
            rows[q, : len(r)], sims[q, : len(r)] = r[order], v[order]
            if len(r) < k:
                others = np.arange(min(self.n_rows, k + len(r)))
                rows[q, len(r) :] = np.setdiff1d(others, r)[: k - len(r)]
        return rows, sims
