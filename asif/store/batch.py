"""Batches of anchor rows: built from arrays, and conformed to a table's schema before a write.

Conforming is where a batch is refused for not fitting the table (other encoders, other
dimensions, a missing column, a lossy cast, null or repeated ids), before anything is written.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from asif.errors import DimensionMismatchError, EncoderMismatchError, SchemaMismatchError
from asif.store.ids import anchor_id
from asif.store.schema import (
    COLUMNS,
    ID,
    IMAGE_EMBEDDING,
    META_IMAGE_DIM,
    META_IMAGE_ENCODER,
    META_TEXT_DIM,
    META_TEXT_ENCODER,
    TEXT_EMBEDDING,
    anchor_columns,
    anchor_schema,
    decode_metadata,
    fixed_size_list,
)


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
    thumbnails: Sequence[bytes | None] | None = None,
) -> pa.Table:
    """A batch of anchor rows in the table's schema; ids default to `anchor_id(url, caption)`,
    thumbnails (`asif.store.thumbnails`) to null.

    With both encoder names the batch carries the schema metadata, so `AnchorTable.upsert`
    can refuse it if it names other encoders than the table's.
    """
    n = len(urls)
    image = fixed_size_list(image_embeddings, "image_embeddings")
    text = fixed_size_list(text_embeddings, "text_embeddings")
    if ids is None:
        ids = [anchor_id(u, c) for u, c in zip(urls, captions, strict=True)]
    shards = [shard] * n if isinstance(shard, str) else list(shard)
    thumbs = [None] * n if thumbnails is None else list(thumbnails)
    lengths = {
        len(captions),
        len(widths),
        len(heights),
        len(image),
        len(text),
        len(ids),
        len(shards),
        len(thumbs),
    }
    if lengths != {n}:
        raise SchemaMismatchError(
            f"all columns of an anchor batch need {n} rows, got lengths {lengths}"
        )
    dims = image.type.list_size, text.type.list_size
    if image_encoder is not None and text_encoder is not None:
        schema = anchor_schema(*dims, image_encoder, text_encoder)
    else:
        schema = anchor_columns(*dims)
    columns = [ids, urls, captions, widths, heights, shards, image, text, thumbs]
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


def check_encoders(
    batch: pa.Table | pa.Schema,
    target: pa.Schema,
    *,
    where: str,
    dims: bool = True,
    what: str = "batch",
) -> None:
    """Refuse a batch made for another table than `target` (an anchor table's schema).

    Raises `EncoderMismatchError` if the batch's metadata names other encoders, and (with
    `dims`) `DimensionMismatchError` if its metadata or fixed-size embedding types say other
    dimensions. A batch without metadata passes the name check. `where` names the table,
    `what` the batch (or the schema a caller asks for).
    """
    schema = batch if isinstance(batch, pa.Schema) else batch.schema
    meta, ours = decode_metadata(schema), decode_metadata(target)
    for key in (META_IMAGE_ENCODER, META_TEXT_ENCODER):
        theirs = meta.get(key)
        if theirs is not None and theirs != ours[key]:
            raise EncoderMismatchError(
                f"{what} names {key.split('.')[1].replace('_', ' ')} {theirs!r}, "
                f"but {where} holds embeddings from {ours[key]!r}"
            )
    if not dims:
        return
    for key, col in ((META_IMAGE_DIM, IMAGE_EMBEDDING), (META_TEXT_DIM, TEXT_EMBEDDING)):
        dim, theirs = int(ours[key]), meta.get(key)
        if theirs is not None and int(theirs) != dim:
            raise DimensionMismatchError(
                f"{what} metadata says {col} is {theirs}-d, {where} is {dim}-d"
            )
        idx = schema.get_field_index(col)
        if idx >= 0 and pa.types.is_fixed_size_list(schema.field(idx).type):
            size = schema.field(idx).type.list_size
            if size != dim:
                raise DimensionMismatchError(f"{what} {col} is {size}-d, {where} is {dim}-d")


def conform_batch(batch: pa.Table, target: pa.Schema, *, where: str) -> pa.Table:
    """The batch cast to `target`, an anchor table's schema (lossless casts, float64 -> float32).

    Raises `EncoderMismatchError`, `DimensionMismatchError` (naming both sides) or
    `SchemaMismatchError` (missing column, lossy cast, null or duplicate ids, null embedding).
    Columns not in the schema are dropped (a thumbnail for a table made before thumbnails);
    nullable columns beyond the anchor columns (the thumbnail, or ones added by users) are null
    where the batch lacks them. `where` names the table in the messages.
    """
    check_encoders(batch, target, where=where)
    missing = [c for c in COLUMNS if c not in batch.column_names]
    if missing:
        raise SchemaMismatchError(
            f"batch lacks column(s) {missing}; the anchor table needs {list(COLUMNS)}"
        )
    arrays = []
    for field in target:
        if field.name not in batch.column_names:  # one added to the table (`add_columns`)
            if not field.nullable:
                raise SchemaMismatchError(
                    f"batch lacks column {field.name!r} of {where}, which has no default (not "
                    "nullable)"
                )
            arrays.append(pa.nulls(batch.num_rows, field.type))
            continue
        col = batch.column(field.name)
        if field.name in (IMAGE_EMBEDDING, TEXT_EMBEDDING):
            _check_list_lengths(col, field, where)
        if col.null_count and field.name in (ID, IMAGE_EMBEDDING, TEXT_EMBEDDING):
            raise SchemaMismatchError(
                f"batch column {field.name!r} has {col.null_count} null row(s)"
            )
        try:
            arrays.append(col.cast(field.type, safe=True))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
            raise SchemaMismatchError(
                f"batch column {field.name!r} of type {col.type} does not cast to {field.type}: {e}"
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


def _check_list_lengths(col: pa.ChunkedArray, field: pa.Field, where: str) -> None:
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
            f"batch {field.name} has rows of length {bad}, {where} is {dim}-d"
        )
