"""The anchor collection as a versioned LanceDB table: one row per (image, caption) anchor pair.

The anchor table *is* the ASIF model: loading a model means reading its embeddings
(`AnchorTable.arrays()`), updating a model means upserting or removing rows, and every write
is a new table version that can be tagged, opened read-only, diffed or restored.

Schema (`anchor_schema`): ``id`` string not null (``anchor_id(url, caption)``), ``url``,
``caption``, ``width`` int32, ``height`` int32, ``shard`` (the source shard), and
``image_embedding`` / ``text_embedding`` as ``fixed_size_list<float32>[d]``. The encoders'
identity lives in the Arrow schema metadata (``asif.image_encoder``, ``asif.text_encoder``,
``asif.image_dim``, ``asif.text_dim``, ``asif.schema_version``); Lance keeps schema metadata
in every manifest, so it survives appends, merges, deletes, compaction and reopening.

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
``allow_http="true"`` for a plain-HTTP endpoint.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import lancedb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from asif.errors import DimensionMismatchError, EncoderMismatchError, SchemaMismatchError
from asif.store.ids import anchor_id

SCHEMA_VERSION = "1"
META_IMAGE_ENCODER = "asif.image_encoder"
META_TEXT_ENCODER = "asif.text_encoder"
META_IMAGE_DIM = "asif.image_dim"
META_TEXT_DIM = "asif.text_dim"
META_SCHEMA_VERSION = "asif.schema_version"

ID, URL, CAPTION, WIDTH, HEIGHT, SHARD = "id", "url", "caption", "width", "height", "shard"
IMAGE_EMBEDDING, TEXT_EMBEDDING = "image_embedding", "text_embedding"
COLUMNS = (ID, URL, CAPTION, WIDTH, HEIGHT, SHARD, IMAGE_EMBEDDING, TEXT_EMBEDDING)


def anchor_schema(
    image_dim: int, text_dim: int, image_encoder: str, text_encoder: str
) -> pa.Schema:
    """The Arrow schema of an anchor table, with the encoders' identity in its metadata."""
    if image_dim < 1 or text_dim < 1:
        raise DimensionMismatchError(
            f"dimensions must be >= 1, got image {image_dim}, text {text_dim}"
        )
    return pa.schema(
        [
            pa.field(ID, pa.string(), nullable=False),
            pa.field(URL, pa.string()),
            pa.field(CAPTION, pa.string()),
            pa.field(WIDTH, pa.int32()),
            pa.field(HEIGHT, pa.int32()),
            pa.field(SHARD, pa.string()),
            pa.field(IMAGE_EMBEDDING, pa.list_(pa.float32(), image_dim)),
            pa.field(TEXT_EMBEDDING, pa.list_(pa.float32(), text_dim)),
        ],
        metadata={
            META_IMAGE_ENCODER: image_encoder,
            META_TEXT_ENCODER: text_encoder,
            META_IMAGE_DIM: str(image_dim),
            META_TEXT_DIM: str(text_dim),
            META_SCHEMA_VERSION: SCHEMA_VERSION,
        },
    )


def _fixed_size_list(x: np.ndarray, name: str) -> pa.FixedSizeListArray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise DimensionMismatchError(f"{name} must be a 2-D (n, d) array, got shape {x.shape}")
    return pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), x.shape[1])


def build_anchor_batch(
    *,
    urls: Sequence[str],
    captions: Sequence[str],
    widths: Sequence[int],
    heights: Sequence[int],
    image_embeddings: np.ndarray,
    text_embeddings: np.ndarray,
    shard: str | Sequence[str] = "",
    image_encoder: str | None = None,
    text_encoder: str | None = None,
    ids: Sequence[str] | None = None,
) -> pa.Table:
    """A batch of anchor rows in the table's schema; ids default to `anchor_id(url, caption)`.

    With both encoder names the batch carries the schema metadata, so `AnchorTable.upsert`
    can refuse it if it names other encoders than the table's.
    """
    n = len(urls)
    image = _fixed_size_list(image_embeddings, "image_embeddings")
    text = _fixed_size_list(text_embeddings, "text_embeddings")
    if ids is None:
        ids = [anchor_id(u, c) for u, c in zip(urls, captions, strict=True)]
    shards = [shard] * n if isinstance(shard, str) else list(shard)
    lengths = {
        len(captions),
        len(widths),
        len(heights),
        len(image),
        len(text),
        len(ids),
        len(shards),
    }
    if lengths != {n}:
        raise SchemaMismatchError(
            f"all columns of an anchor batch need {n} rows, got lengths {lengths}"
        )
    if image_encoder is not None and text_encoder is not None:
        schema = anchor_schema(
            image.type.list_size, text.type.list_size, image_encoder, text_encoder
        )
    else:
        schema = anchor_schema(image.type.list_size, text.type.list_size, "", "").remove_metadata()
    columns = [ids, urls, captions, widths, heights, shards, image, text]
    arrays = [
        col if isinstance(col, pa.Array) else pa.array(col, type=field.type)
        for col, field in zip(columns, schema, strict=True)
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


def drop_duplicate_ids(batch: pa.Table) -> pa.Table:
    """The batch without rows whose id already occurred earlier in it (first one kept)."""
    if batch.num_rows == 0:
        return batch
    rows = pa.table({ID: batch.column(ID), "row": pa.array(np.arange(batch.num_rows))})
    first = rows.group_by(ID, use_threads=False).aggregate([("row", "min")]).column("row_min")
    return batch.take(pc.sort_indices(first))


@dataclass(frozen=True)
class UpsertResult:
    """What one upsert did: rows inserted, rows updated (same id), and the new table version."""

    inserted: int
    updated: int
    version: int


@dataclass(frozen=True)
class ChangedRows:
    """Ids present at `to_version` but not `from_version` (added) and the reverse (removed)."""

    from_version: int
    to_version: int
    added: list[str]
    removed: list[str]


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


def _decode_metadata(schema: pa.Schema) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in (schema.metadata or {}).items()}


def embedding_matrix(column: pa.ChunkedArray, dim: int) -> np.ndarray:
    """(N, dim) float32 view of a fixed_size_list column; zero-copy when it is one chunk."""
    if len(column) == 0:
        return np.empty((0, dim), dtype=np.float32)
    arr = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    values = arr.flatten()  # honours the array's offset; no copy for a fixed-size list
    try:
        flat = values.to_numpy(zero_copy_only=True)
    except pa.ArrowInvalid:
        flat = values.to_numpy(zero_copy_only=False).astype(np.float32)
    return flat.reshape(-1, dim)


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


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
        meta = _decode_metadata(table.schema)
        missing = [
            k
            for k in (META_IMAGE_ENCODER, META_TEXT_ENCODER, META_IMAGE_DIM, META_TEXT_DIM)
            if k not in meta
        ]
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
        table._check_identity(
            image_encoder=image_encoder,
            text_encoder=text_encoder,
            image_dim=image_dim,
            text_dim=text_dim,
        )
        return table

    @classmethod
    def open(
        cls,
        uri: str,
        name: str = "anchors",
        storage_options: Mapping[str, str] | None = None,
        version: int | str | None = None,
    ) -> AnchorTable:
        """Open a table: the latest version (writable) or a version number or tag (read-only)."""
        tbl = cls._connect(uri, storage_options).open_table(name)
        if version is not None:
            tbl.checkout(version)
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
        self._meta = _decode_metadata(self._tbl.schema)
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
    def _check_identity(
        self, *, image_encoder: str, text_encoder: str, image_dim: int, text_dim: int
    ) -> None:
        where = f"anchor table {self.dataset_uri}"
        for kind, ours, theirs in (
            ("image", self.image_encoder, image_encoder),
            ("text", self.text_encoder, text_encoder),
        ):
            if ours != theirs:
                raise EncoderMismatchError(
                    f"{where} holds {kind} embeddings from encoder {ours!r}, not {theirs!r}"
                )
        for kind, ours, theirs in (
            ("image", self.image_dim, image_dim),
            ("text", self.text_dim, text_dim),
        ):
            if ours != theirs:
                raise DimensionMismatchError(
                    f"{where} holds {ours}-d {kind} embeddings, not {theirs}-d"
                )

    def check_encoders(self, batch: pa.Table | pa.Schema, *, dims: bool = True) -> None:
        """Raise `EncoderMismatchError` if the batch's metadata names other encoders than the
        table's, and (with `dims`) `DimensionMismatchError` if its metadata or fixed-size
        embedding types say other dimensions. A batch without metadata passes the name check."""
        schema = batch if isinstance(batch, pa.Schema) else batch.schema
        meta = _decode_metadata(schema)
        for key, ours in (
            (META_IMAGE_ENCODER, self.image_encoder),
            (META_TEXT_ENCODER, self.text_encoder),
        ):
            theirs = meta.get(key)
            if theirs is not None and theirs != ours:
                raise EncoderMismatchError(
                    f"batch was embedded with {key.split('.')[1].replace('_', ' ')} {theirs!r}, "
                    f"but anchor table {self.dataset_uri} uses {ours!r}"
                )
        if not dims:
            return
        for key, col, ours in (
            (META_IMAGE_DIM, IMAGE_EMBEDDING, self.image_dim),
            (META_TEXT_DIM, TEXT_EMBEDDING, self.text_dim),
        ):
            theirs = meta.get(key)
            if theirs is not None and int(theirs) != ours:
                raise DimensionMismatchError(
                    f"batch metadata says {col} is {theirs}-d, "
                    f"anchor table {self.dataset_uri} is {ours}-d"
                )
            idx = schema.get_field_index(col)
            if idx >= 0 and pa.types.is_fixed_size_list(schema.field(idx).type):
                size = schema.field(idx).type.list_size
                if size != ours:
                    raise DimensionMismatchError(
                        f"batch {col} is {size}-d, anchor table {self.dataset_uri} is {ours}-d"
                    )

    def conform(self, batch: pa.Table) -> pa.Table:
        """The batch cast to the table's schema (lossless casts, float64 -> float32 embeddings).

        Raises `EncoderMismatchError`, `DimensionMismatchError` (naming both sides) or
        `SchemaMismatchError` (missing column, lossy cast, null or duplicate ids, null embedding).
        Columns not in the schema are dropped.
        """
        self.check_encoders(batch)
        missing = [c for c in COLUMNS if c not in batch.column_names]
        if missing:
            raise SchemaMismatchError(
                f"batch lacks column(s) {missing}; the anchor table needs {list(COLUMNS)}"
            )
        target = self.schema
        arrays = []
        for field in target:
            col = batch.column(field.name)
            if field.name in (IMAGE_EMBEDDING, TEXT_EMBEDDING):
                self._check_list_lengths(col, field)
            if col.null_count and field.name in (ID, IMAGE_EMBEDDING, TEXT_EMBEDDING):
                raise SchemaMismatchError(
                    f"batch column {field.name!r} has {col.null_count} null row(s)"
                )
            try:
                arrays.append(col.cast(field.type, safe=True))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
                raise SchemaMismatchError(
                    f"batch column {field.name!r} of type {col.type} "
                    f"does not cast to {field.type}: {e}"
                ) from e
        out = pa.Table.from_arrays(arrays, schema=target)
        if out.num_rows and pc.count_distinct(out.column(ID)).as_py() != out.num_rows:
            counts = pc.value_counts(out.column(ID))
            dups = [v["values"] for v in counts.to_pylist() if v["counts"] > 1]
            raise SchemaMismatchError(
                f"batch has {len(dups)} id(s) on more than one row, e.g. {dups[:3]}; "
                "see drop_duplicate_ids()"
            )
        return out

    def _check_list_lengths(self, col: pa.ChunkedArray, field: pa.Field) -> None:
        dim = field.type.list_size
        if pa.types.is_fixed_size_list(col.type):
            return  # size checked by check_encoders
        if not (pa.types.is_list(col.type) or pa.types.is_large_list(col.type)):
            raise SchemaMismatchError(
                f"batch column {field.name!r} is {col.type}, not a list of floats"
            )
        lengths = pc.unique(pc.list_value_length(col).drop_null()).to_pylist()
        bad = sorted(n for n in lengths if n != dim)
        if bad:
            raise DimensionMismatchError(
                f"batch {field.name} has rows of length {bad}, "
                f"anchor table {self.dataset_uri} is {dim}-d"
            )

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

    def remove(self, ids: Sequence[str]) -> int:
        """Delete the rows with these ids (unknown ids are ignored); returns the version after."""
        self._writable()
        ids = list(dict.fromkeys(ids))
        if not ids:
            return self.version
        self._tbl.delete(f"{ID} IN ({','.join(_quote(i) for i in ids)})")
        return self.version

    def restore(self, version: int | str) -> int:
        """Make an old version (number or tag) the latest again, as a new version; returns it."""
        self._writable()
        self._tbl.restore(version)
        self._meta = _decode_metadata(self._tbl.schema)
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

    def _ids_at(self, version: int | str) -> set[str]:
        ds = self._tbl.to_lance().checkout_version(version)
        return set(ds.to_table(columns=[ID]).column(ID).to_pylist())

    def changed_rows(
        self, from_version: int | str, to_version: int | str | None = None
    ) -> ChangedRows:
        """Ids added and removed between two versions (numbers or tags; default to: this one).

        A diff of the two versions' id columns (Lance's `delta` lists inserted/updated rows but
        not deletions). Rows rewritten under the same id (an update) appear in neither list.
        """
        to_version = self.version if to_version is None else to_version
        tags = self.tags()

        def number(v: int | str) -> int:
            if isinstance(v, str):
                if v not in tags:
                    raise ValueError(f"no tag {v!r} on {self.dataset_uri}; tags: {sorted(tags)}")
                return tags[v]
            return int(v)

        a, b = number(from_version), number(to_version)
        before, after = self._ids_at(a), self._ids_at(b)
        return ChangedRows(
            from_version=a,
            to_version=b,
            added=sorted(after - before),
            removed=sorted(before - after),
        )
