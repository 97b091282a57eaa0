"""Live updates: a model moved to a newer table version in time proportional to the change.

The new model appends written rows into spare capacity the old one cannot see and retires
dropped rows as tombstones (`TombstoneScan`), so requests still holding the old model are
not disturbed. Past a number of tombstones the anchors are compacted into a fresh copy.
"""

from __future__ import annotations

import numpy as np

from asif.errors import EmptyInputError, UnsupportedOperationError
from asif.model.anchor_set import AnchorSet
from asif.model.asif_model import AsifModel
from asif.scan.tombstones import TombstoneScan
from asif.store.changes import TableDelta

MAX_TOMBSTONES = 10_000  # removed rows kept as tombstones before the anchors are compacted


def updatable(model: AsifModel, spare_rows: int = 0, copy: bool = True) -> AsifModel:
    """`model` over a `TombstoneScan` with no tombstones, ready for `apply_delta`.

    With `copy`, its matrices are copied with room for `spare_rows` more, so appends are in
    place (otherwise the first append copies them, e.g. out of a memory map).
    """
    scan = model.exact_scan("a live update")
    if copy:
        scan = scan.reserve(spare_rows)
    return model.with_anchors(model.anchors, TombstoneScan(scan, np.empty(0, np.int64)))


def apply_delta(model: AsifModel, delta: TableDelta, max_dead: int = MAX_TOMBSTONES) -> AsifModel:
    """A new model with the delta applied; `model` (over a TombstoneScan) is unchanged.

    Past `max_dead` tombstones (or a quarter of the rows) the anchors are compacted.
    """
    scan = model.scan
    if not isinstance(scan, TombstoneScan):
        raise UnsupportedOperationError("apply_delta needs a model made by updatable()")
    anchors, base, dead = model.anchors, scan.base, scan.dead
    if delta.dropped:
        dead = np.union1d(dead, anchors.rows(delta.dropped))
    if delta.written_ids:
        written = AnchorSet(delta.written_ids, delta.written_captions, delta.written_urls)
        anchors = anchors.extend(written)
        base = base.append(delta.written_image, delta.written_text)
    if len(dead) >= base.n_rows:
        raise EmptyInputError(f"version {delta.to_version} of the anchor table has no rows")
    out = model.with_anchors(anchors, TombstoneScan(base, dead))
    if len(dead) > min(max_dead, base.n_rows // 4):
        out = updatable(out.compacted(), copy=False)
    return out
