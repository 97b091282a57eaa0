"""The anchor collection as a versioned LanceDB table: one row per (image, caption) anchor pair.

The anchor table *is* the ASIF model: loading a model means reading its embeddings
(`AnchorTable.arrays()`), updating a model means upserting or removing rows, and every write
is a new table version that can be tagged, opened read-only, diffed (`asif.store.changes`) or
restored. Its columns and metadata are in `asif.store.schema`, batches in `asif.store.batch`.

The table lives at ``{uri}/{name}.lance`` (`AnchorTable.dataset_uri`) and any Arrow tool reads
it (checked with lancedb 0.40, pylance 14, duckdb 2.0, polars 2.1, pandas 2.3)::

    import lance, duckdb, polars as pl
    ds = lance.dataset(table.dataset_uri, storage_options=opts)   # or version=3 / "prod"
    arrow = ds.to_table(columns=["id", "caption"])
    duckdb.sql("SELECT count(*) FROM ds").fetchall()              # DuckDB scans the dataset
    pl.scan_pyarrow_dataset(ds).select("id").collect()            # or pl.from_arrow(arrow)
    arrow.to_pandas()                                             # or lancedb's tbl.to_pandas()

On S3 (or an S3-compatible store) pass ``storage_options`` with lancedb/object_store keys:
``aws_access_key_id``, ``aws_secret_access_key``, ``aws_region``, ``aws_endpoint`` and
``allow_http="true"`` for a plain-HTTP endpoint (`asif.store.location` reads them from the
environment).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import lancedb
import numpy as np
import pyarrow as pa
from lancedb.index import BTree

from asif.errors import (
    SchemaMismatchError,
    TableNotFoundError,
)
from asif.store.batch import check_encoders, conform_batch
from asif.store.schema import (
    CAPTION,
    ID,
    IDENTITY_KEYS,
    IMAGE_EMBEDDING,
    META_IMAGE_DIM,
    META_IMAGE_ENCODER,
    META_TEXT_DIM,
    META_TEXT_ENCODER,
    OPTIONAL_FIELDS,
    TEXT_EMBEDDING,
    THUMBNAIL,
    URL,
    anchor_schema,
    decode_metadata,
    embedding_matrix,
)
from asif.store.sql import quote


@dataclass(frozen=True)
class UpsertResult:
    """What one upsert did: rows inserted, rows updated (same id), and the new table version."""

    inserted: int
    updated: int
    version: int


@dataclass(frozen=True)
class VersionInfo:
    """One table version: number, commit time, row count and the tags pointing at it."""

    version: int
    timestamp: datetime
    num_rows: int | None
    tags: list[str]


@dataclass(frozen=True)
class AnchorArrays:
    """Everything needed to build a model: ids, captions, urls and (N, d) float32 embeddings."""

    ids: list[str]
    captions: list[str]
    urls: list[str]
    image: np.ndarray
    text: np.ndarray
    version: int
    image_encoder: str
    text_encoder: str

    def __len__(self) -> int:
        return len(self.ids)


class AnchorTable:
    """A LanceDB anchor table; every write makes a new version. Views at a version are read-only."""

    def __init__(
        self,
        table: Any,
        *,
        uri: str,
        name: str,
        storage_options: Mapping[str, str] | None = None,
        read_only: bool = False,
    ) -> None:
        self._tbl = table
        self.uri = uri
        self.name = name
        self.storage_options = dict(storage_options) if storage_options else None
        self.read_only = read_only
        meta = decode_metadata(table.schema)
        missing = [k for k in IDENTITY_KEYS if k not in meta]
        if missing:
            raise SchemaMismatchError(
                f"table {name!r} at {uri} is not an ASIF anchor table: "
                f"schema metadata lacks {missing}"
            )
        self._meta = meta

    # ----------------------------------------------------------------- opening
    @staticmethod
    def _connect(uri: str, storage_options: Mapping[str, str] | None) -> Any:
        return lancedb.connect(
            uri, storage_options=dict(storage_options) if storage_options else None
        )

    @classmethod
    def create_or_open(
        cls,
        uri: str,
        *,
        image_encoder: str,
        text_encoder: str,
        image_dim: int,
        text_dim: int,
        name: str = "anchors",
        storage_options: Mapping[str, str] | None = None,
    ) -> AnchorTable:
        """Open the table, or create it empty; an existing one must have the same encoders/dims."""
        db = cls._connect(uri, storage_options)
        schema = anchor_schema(image_dim, text_dim, image_encoder, text_encoder)
        try:
            tbl = db.open_table(name)
        except ValueError:  # lancedb 0.40: "Table 'x' was not found"
            try:
                tbl = db.create_table(name, schema=schema)
            except ValueError:  # created meanwhile by another writer
                tbl = db.open_table(name)
        table = cls(tbl, uri=uri, name=name, storage_options=storage_options)
        check_encoders(schema, table.schema, where=table._where, what="the requested model")
        table.upgrade()
        return table

    def upgrade(self) -> None:
        """Give a table made by an earlier release the optional columns it lacks (all null),
        as one new version with no data rewritten; nothing if it has them."""
        missing = [f for f in OPTIONAL_FIELDS if f.name not in self.schema.names]
        if missing:
            self._writable()
            self._tbl.add_columns(missing)
            self._meta = decode_metadata(self._tbl.schema)

    @classmethod
    def open(
        cls,
        uri: str,
        name: str = "anchors",
        storage_options: Mapping[str, str] | None = None,
        version: int | str | None = None,
    ) -> AnchorTable:
        """Open a table: the latest version (writable) or a version number or tag (read-only)."""
        try:
            tbl = cls._connect(uri, storage_options).open_table(name)
        except ValueError as e:
            if "was not found" not in str(e):  # lancedb 0.40: "Table 'x' was not found"
                raise
            raise TableNotFoundError(f"no anchor table {name!r} at {uri}") from None
        if version is not None:
            try:
                tbl.checkout(version)
            except ValueError:  # "Version 9 no longer exists", also for unknown tags
                raise TableNotFoundError(
                    f"anchor table {name!r} at {uri} has no version or tag {version!r}"
                ) from None
        return cls(
            tbl, uri=uri, name=name, storage_options=storage_options, read_only=version is not None
        )

    def at(self, version: int | str) -> AnchorTable:
        """A read-only view of this table at a version number or tag."""
        return AnchorTable.open(self.uri, self.name, self.storage_options, version=version)

    def refresh(self) -> int:
        """See writes made by other handles or processes; returns the latest version."""
        if self.read_only:
            raise RuntimeError(
                f"a view at version {self.version} cannot move; use AnchorTable.open"
            )
        self._tbl.checkout_latest()
        self._meta = decode_metadata(self._tbl.schema)
        return self.version

    # -------------------------------------------------------------- properties
    @property
    def version(self) -> int:
        return int(self._tbl.version)

    @property
    def image_encoder(self) -> str:
        return self._meta[META_IMAGE_ENCODER]

    @property
    def text_encoder(self) -> str:
        return self._meta[META_TEXT_ENCODER]

    @property
    def image_dim(self) -> int:
        return int(self._meta[META_IMAGE_DIM])

    @property
    def text_dim(self) -> int:
        return int(self._meta[META_TEXT_DIM])

    @property
    def schema(self) -> pa.Schema:
        return self._tbl.schema

    @property
    def has_thumbnails(self) -> bool:
        """Whether this version has the thumbnail column (rows may still be null there)."""
        return THUMBNAIL in self.schema.names

    @property
    def metadata(self) -> dict[str, str]:
        """The asif.* schema metadata (encoders, dims, schema version)."""
        return dict(self._meta)

    @property
    def dataset_uri(self) -> str:
        """Where the Lance dataset lives, for `lance.dataset(...)` and other readers."""
        return str(self._tbl.uri)

    @property
    def lance_table(self) -> Any:
        """The underlying `lancedb` table (for indexes, search, maintenance)."""
        return self._tbl

    def __len__(self) -> int:
        return int(self._tbl.count_rows())

    def __repr__(self) -> str:
        mode = " read-only" if self.read_only else ""
        return (
            f"AnchorTable({self.dataset_uri!r}, version={self.version}{mode}, "
            f"image={self.image_encoder}[{self.image_dim}], "
            f"text={self.text_encoder}[{self.text_dim}])"
        )

    # ------------------------------------------------------------------ checks
    def check_encoders(self, batch: pa.Table | pa.Schema, *, dims: bool = True) -> None:
        """Raise `EncoderMismatchError` if the batch's metadata names other encoders than the
        table's, and (with `dims`) `DimensionMismatchError` if its metadata or fixed-size
        embedding types say other dimensions. A batch without metadata passes the name check."""
        check_encoders(batch, self.schema, where=self._where, dims=dims)

    def conform(self, batch: pa.Table) -> pa.Table:
        """The batch cast to the table's schema (lossless casts, float64 -> float32 embeddings).

        Raises `EncoderMismatchError`, `DimensionMismatchError` (naming both sides) or
        `SchemaMismatchError` (missing column, lossy cast, null or duplicate ids, null embedding).
        Columns not in the schema are dropped. `upsert` conforms the batch it is given.
        """
        return conform_batch(batch, self.schema, where=self._where)

    @property
    def _where(self) -> str:
        return f"anchor table {self.dataset_uri}"

    def _writable(self) -> None:
        if self.read_only:
            raise RuntimeError(f"{self!r} is a read-only view; open the latest version to write")

    # ------------------------------------------------------------------ writes
    def upsert(self, batch: pa.Table) -> UpsertResult:
        """Insert new ids and update rows whose id exists, as one new version.

        A zero-row batch is a no-op (no new version).

        A re-run of the same batch inserts nothing and reports every row as updated.
        """
        self._writable()
        rows = self.conform(batch)
        if rows.num_rows == 0:
            return UpsertResult(inserted=0, updated=0, version=self.version)
        res = (
            self._tbl.merge_insert(ID)
            .when_matched_update_all()
            .when_not_matched_insert_all()
            .execute(rows)
        )
        return UpsertResult(
            inserted=int(res.num_inserted_rows),
            updated=int(res.num_updated_rows),
            version=int(res.version),
        )

    def index_ids(self) -> int:
        """(Re)build the scalar index on `id`; returns the version after.

        `lookup` (the service's `/anchors/{id}`) then reads a few KB instead of the whole id
        column (`benchmarks/thumbnails.py`: 2.9 ms instead of 36 ms at 1M rows). Rows written
        later are still found, by a scan of the part the index does not cover, until the next
        rebuild.
        """
        self._writable()
        self._tbl.create_index(ID, config=BTree(), replace=True)
        return self.version

    def remove(self, ids: Sequence[str]) -> int:
        """Delete the rows with these ids (unknown ids are ignored); returns the version after."""
        self._writable()
        ids = list(dict.fromkeys(ids))
        if not ids:
            return self.version
        self._tbl.delete(f"{ID} IN ({','.join(quote(i) for i in ids)})")
        return self.version

    def restore(self, version: int | str) -> int:
        """Make an old version (number or tag) the latest again, as a new version; returns it."""
        self._writable()
        self._tbl.restore(version)
        self._meta = decode_metadata(self._tbl.schema)
        return self.version

    def tag(self, name: str, version: int | None = None) -> None:
        """Point tag `name` at `version` (default: the current one), moving it if it exists."""
        version = self.version if version is None else int(version)
        if name in self.tags():
            self._tbl.tags.update(name, version)
        else:
            self._tbl.tags.create(name, version)

    def tags(self) -> dict[str, int]:
        """Tag name -> version."""
        return {k: int(v["version"]) for k, v in self._tbl.tags.list().items()}

    def versions(self) -> list[VersionInfo]:
        """Every version still stored, oldest first, with its row count and tags."""
        by_version: dict[int, list[str]] = {}
        for tag, v in self.tags().items():
            by_version.setdefault(v, []).append(tag)
        out = []
        for v in self._tbl.list_versions():
            rows = v.get("metadata", {}).get("total_rows")
            out.append(
                VersionInfo(
                    version=int(v["version"]),
                    timestamp=v["timestamp"],
                    num_rows=int(rows) if rows is not None else None,
                    tags=sorted(by_version.get(int(v["version"]), [])),
                )
            )
        return out

    # ------------------------------------------------------------------- reads
    def read(self, columns: Sequence[str] | None = None) -> pa.Table:
        """The rows at this handle's version as an Arrow table (optionally some columns only)."""
        return self._tbl.to_lance().to_table(columns=list(columns) if columns is not None else None)

    def lookup(self, anchor_id: str, columns: Sequence[str]) -> dict[str, Any] | None:
        """The row with this id at this handle's version (these columns), or None."""
        found = self._tbl.to_lance().to_table(
            columns=list(columns), filter=f"{ID} = {quote(anchor_id)}", limit=1
        )
        return found.to_pylist()[0] if found.num_rows else None

    def arrays(self) -> AnchorArrays:
        """Ids, captions, urls and (N, d) float32 embedding matrices, for loading a model."""
        t = self.read([ID, URL, CAPTION, IMAGE_EMBEDDING, TEXT_EMBEDDING])
        return AnchorArrays(
            ids=t.column(ID).to_pylist(),
            captions=t.column(CAPTION).to_pylist(),
            urls=t.column(URL).to_pylist(),
            image=embedding_matrix(t.column(IMAGE_EMBEDDING), self.image_dim),
            text=embedding_matrix(t.column(TEXT_EMBEDDING), self.text_dim),
            version=self.version,
            image_encoder=self.image_encoder,
            text_encoder=self.text_encoder,
        )
