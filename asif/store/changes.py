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

    None when `new` is not `old` plus new fragments and deletions (a restore or checkout of
    an earlier version revives deleted rows; other encoders change every row): such a
    version must be loaded afresh. Checked, not assumed, from the manifests and counts
    alone (no pass over the ids in Python): no fragment `old` had may have fewer deleted
    rows, and `new` holds exactly as many ids as the old ones less the dropped plus the
    written ones. It always holds those, so a surplus means rows `old` did not have.
    """
    if (old.image_encoder, old.text_encoder, old.image_dim, old.text_dim) != (
        new.image_encoder, new.text_encoder, new.image_dim, new.text_dim,
    ):  # fmt: skip
        return None
    old_ds, new_ds = old.lance_table.to_lance(), new.lance_table.to_lance()
    known = {f.fragment_id: f for f in old_ds.get_fragments()}
    fresh = []
    for f in new_ds.get_fragments():
        before = known.get(f.fragment_id)
        if before is None:
            fresh.append(f)
        elif _deleted(f) < _deleted(before):  # deleted rows came back
            return None
    ids = _ids(new_ds)
    gone = pc.invert(pc.is_in(old_ids, value_set=ids))
    dropped = set(pc.filter(old_ids, gone).to_pylist())
    columns = [ID, URL, CAPTION, IMAGE_EMBEDDING, TEXT_EMBEDDING]
    if fresh:
        written = new_ds.scanner(columns=columns, fragments=fresh).to_table()
    else:
        written = new.schema.empty_table().select(columns)
    written_ids = written.column(ID).to_pylist()
    rewritten = pc.filter(written.column(ID), pc.is_in(written.column(ID), value_set=old_ids))
    dropped.update(rewritten.to_pylist())
    if len(ids) != len(old_ids) - len(dropped) + len(written_ids):
        return None  # rows the old version did not have arrived in fragments it had
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


def _ids(dataset: Any) -> pa.Array:
    """The id column of a Lance dataset (at its version), as one Arrow array."""
    column = dataset.to_table(columns=[ID]).column(ID)
    return column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)


def _deleted(fragment: Any) -> int:
    """Rows deleted from a fragment, from the manifest (no deletion file is read)."""
    deletions = fragment.metadata.deletion_file
    return 0 if deletions is None else int(deletions.num_deleted_rows)
