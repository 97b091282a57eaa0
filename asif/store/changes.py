"""What changed between two versions of an anchor table.

`read_delta` (for a model following its table) reads in time proportional to the change: only
the rows written since the old version (the fragments it did not have), plus the id column for
deletions. `changed_rows` (for people) lists the ids added and removed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from asif.errors import TableNotFoundError
from asif.store.schema import CAPTION, ID, IMAGE_EMBEDDING, TEXT_EMBEDDING, URL, embedding_matrix
from asif.store.table import AnchorTable


@dataclass(frozen=True)
class TableDelta:
    """What changed from `from_version` to `to_version`.

    `dropped` are ids whose old rows leave the model (deleted or rewritten); `written` are
    the rows stored since (inserted or rewritten), with float32 embeddings; `ids` are all ids
    at `to_version`.
    """

    from_version: int
    to_version: int
    ids: pa.Array
    dropped: list[str]
    written_ids: list[str]
    written_captions: list[str]
    written_urls: list[str | None]
    written_image: np.ndarray
    written_text: np.ndarray

    @property
    def size(self) -> int:
        """Rows touched: dropped plus written."""
        return len(self.dropped) + len(self.written_ids)


@dataclass(frozen=True)
class ChangedRows:
    """Ids present at `to_version` but not `from_version` (added) and the reverse (removed)."""

    from_version: int
    to_version: int
    added: list[str]
    removed: list[str]


def changed_rows(
    table: AnchorTable, from_version: int | str, to_version: int | str | None = None
) -> ChangedRows:
    """Ids added and removed between two versions (numbers or tags; default to: `table`'s).

    A diff of the two versions' id columns (Lance's `delta` lists inserted/updated rows but
    not deletions). Rows rewritten under the same id (an update) appear in neither list.
    """
    to_version = table.version if to_version is None else to_version
    tags = table.tags()

    def number(v: int | str) -> int:
        if isinstance(v, str):
            if v not in tags:
                raise TableNotFoundError(
                    f"no tag {v!r} on {table.dataset_uri}; tags: {sorted(tags)}"
                )
            return tags[v]
        return int(v)

    a, b = number(from_version), number(to_version)
    ds = table.lance_table.to_lance()
    before = set(_ids(ds.checkout_version(a)).to_pylist())
    after = set(_ids(ds.checkout_version(b)).to_pylist())
    return ChangedRows(
        from_version=a,
        to_version=b,
        added=sorted(after - before),
        removed=sorted(before - after),
    )


def read_delta(old: AnchorTable, new: AnchorTable, old_ids: pa.Array) -> TableDelta | None:
    """The changes between two views of one table; `old_ids` are the ids at `old`'s version.

    None when `new` is not `old` plus new fragments and deletions: such a version must be
    loaded afresh. That is the case for a restore or checkout of an earlier version (it
    revives deleted rows), other encoders (every row changes), a column read here rewritten
    in place (`alter_columns` to another type, new data files or overlays in a fragment `old`
    had), or an `old` version no longer stored (cleaned up after a compaction). Checked, not
    assumed, mostly from the manifests and counts (no pass over every id in Python): no
    fragment `old` had may have fewer deleted rows or other data for these columns; `new`
    holds exactly as many ids as the old ones less the dropped plus the written ones (it
    always holds those, so a surplus means rows `old` did not have); and no id of a fragment
    that left (read from `old`: proportional to the change) is still there unless written
    again, since a revived older row of it would otherwise pass for the one the model has.
    """
    if (old.image_encoder, old.text_encoder, old.image_dim, old.text_dim) != (
        new.image_encoder, new.text_encoder, new.image_dim, new.text_dim,
    ):  # fmt: skip
        return None
    old_ds = _dataset(old)
    if old_ds is None:
        return None
    new_ds = new.lance_table.to_lance()
    columns = [ID, URL, CAPTION, IMAGE_EMBEDDING, TEXT_EMBEDDING]
    fields = _fields(old_ds, columns)
    if fields != _fields(new_ds, columns):
        return None  # a column replaced (e.g. cast to another type): every row rewritten
    field_ids = {i for _, i, _ in fields}
    known = {f.fragment_id: f for f in old_ds.get_fragments()}
    fresh = []
    for f in new_ds.get_fragments():
        before = known.pop(f.fragment_id, None)
        if before is None:
            fresh.append(f)
        elif _deleted(f) < _deleted(before):  # deleted rows came back
            return None
        elif _data(f, field_ids) != _data(before, field_ids):  # rewritten in place
            return None
    ids = _ids(new_ds)
    gone = pc.invert(pc.is_in(old_ids, value_set=ids))
    dropped = set(pc.filter(old_ids, gone).to_pylist())
    if fresh:
        written = new_ds.scanner(columns=columns, fragments=fresh).to_table()
    else:
        written = new.schema.empty_table().select(columns)
    written_ids = written.column(ID).to_pylist()
    rewritten = pc.filter(written.column(ID), pc.is_in(written.column(ID), value_set=old_ids))
    dropped.update(rewritten.to_pylist())
    if len(ids) != len(old_ids) - len(dropped) + len(written_ids):
        return None  # rows the old version did not have arrived in fragments it had
    if known:  # fragments that left: their rows were deleted, compacted or restored away
        left = old_ds.scanner(columns=[ID], fragments=list(known.values())).to_table()
        left_ids = left.column(ID)
        stayed = pc.and_(
            pc.is_in(left_ids, value_set=ids),
            pc.invert(pc.is_in(left_ids, value_set=written.column(ID))),
        )
        if pc.any(stayed).as_py():
            return None  # an id whose row left is served by an older row a restore revived
    return TableDelta(
        from_version=old.version,
        to_version=new.version,
        ids=ids,
        dropped=sorted(dropped),
        written_ids=written_ids,
        written_captions=written.column(CAPTION).to_pylist(),
        written_urls=written.column(URL).to_pylist(),
        written_image=embedding_matrix(written.column(IMAGE_EMBEDDING), new.image_dim),
        written_text=embedding_matrix(written.column(TEXT_EMBEDDING), new.text_dim),
    )


def _dataset(table: AnchorTable) -> Any | None:
    """The Lance dataset at `table`'s version, or None where that version is no longer
    stored (`optimize(cleanup_older_than=...)` deletes old manifests, the served one too)."""
    try:
        return table.lance_table.to_lance()
    except ValueError as e:  # lance 14: "Dataset at path .../3.manifest was not found"
        if "not found" not in str(e).lower():
            raise
        return None


def _fields(dataset: Any, columns: list[str]) -> list[tuple[str, int, str]]:
    """(name, Lance field id, Arrow type) of these columns: an id or type that differs
    between two versions means the column was replaced (`alter_columns` writes new data)."""
    schema, arrow = dataset.lance_schema, dataset.schema
    return [(c, schema.field(c).id(), str(arrow.field(c).type)) for c in columns]


def _data(fragment: Any, field_ids: set[int]) -> tuple[list[str], list[str]]:
    """The paths of a fragment's data files and overlays holding any of these fields
    (files holding other columns only, e.g. one added by `add_columns`, do not count)."""
    meta = fragment.metadata
    files = sorted(f.path for f in meta.files if field_ids.intersection(f.fields))
    overlays = sorted(
        o.data_file.path for o in meta.overlays if field_ids.intersection(o.data_file.fields)
    )
    return files, overlays


def _ids(dataset: Any) -> pa.Array:
    """The id column of a Lance dataset (at its version), as one Arrow array."""
    column = dataset.to_table(columns=[ID]).column(ID)
    return column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)


def _deleted(fragment: Any) -> int:
    """Rows deleted from a fragment, from the manifest (no deletion file is read)."""
    deletions = fragment.metadata.deletion_file
    return 0 if deletions is None else int(deletions.num_deleted_rows)
