"""Incremental model updates between two versions of an anchor table.

Only the rows written since the old version (the fragments it did not have) are read, plus the
id column for deletions. The new model appends into spare capacity the old one cannot see and
retires removed rows as tombstones, so requests still holding the old model are not disturbed
and an update costs time proportional to the change, not to the number of anchors.
"""

from __future__ import annotations

import numpy as np

from asif.errors import DimensionMismatchError, EmptyInputError
from asif.model import AnchorSet, AsifModel
from asif.model.relative import SparseRelative, relative_representation
from asif.scan.matrix import AnchorMatrix
from asif.store.changes import TableDelta

MAX_TOMBSTONES = 10_000  # removed rows kept as tombstones before the anchors are compacted


class LiveAsifModel(AsifModel):
    """An AsifModel whose removed anchors are tombstones until it is compacted.

    `anchors` holds every row ever appended since the last compaction; the rows in `dead`
    are retired (removed, or replaced by a newer row with the same id) and never appear in a
    relative representation: each query takes its top k + len(dead) anchors, drops the dead
    ones and keeps the first k, which is exactly the top k of the live anchors. So removals
    cost O(removed) instead of a copy of all anchors. Indices in its relative representations
    are rows of `anchors`. Use `compacted()` for a plain model (to save, prune or compress).
    """

    def __init__(self, anchors: AnchorSet, *, dead: np.ndarray, **kwargs) -> None:
        super().__init__(anchors, **kwargs)
        self.dead = np.unique(np.asarray(dead, dtype=np.int64))
        if len(self.dead) >= len(anchors):
            raise EmptyInputError("removing these anchors would leave the model with none")

    @classmethod
    def wrap(cls, model: AsifModel, copy: bool = True, spare_rows: int = 0) -> LiveAsifModel:
        """`model` as a live model; with `copy`, its matrices are copied with spare room, so
        appends are in place (otherwise the first append copies them, e.g. out of a mmap)."""
        a = model.anchors
        if copy:
            a = AnchorSet(
                a.ids, a.captions, a.urls, a.image.reserve(spare_rows), a.text.reserve(spare_rows)
            )
        return cls(a, dead=np.empty(0, np.int64), **_settings(model))

    def __len__(self) -> int:
        return len(self.anchors) - len(self.dead)

    def live_rows(self) -> np.ndarray:
        """Rows of `anchors` that are not tombstones."""
        return np.setdiff1d(np.arange(len(self.anchors)), self.dead, assume_unique=True)

    def compacted(self) -> AsifModel:
        """A plain AsifModel over the live anchors only (copies them)."""
        a = self.anchors
        live = self.live_rows()
        anchors = AnchorSet(
            [a.ids[i] for i in live],
            [a.captions[i] for i in live],
            [a.urls[i] for i in live],
            a.image.delete(self.dead),
            a.text.delete(self.dead),
        )
        return AsifModel(anchors, **_settings(self))

    def _relative(self, x: np.ndarray, anchors: AnchorMatrix, kind: str) -> SparseRelative:
        if not len(self.dead):
            return super()._relative(x, anchors, kind)
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != anchors.dim:
            raise DimensionMismatchError(
                f"{kind} embeddings have shape {x.shape}; the anchors' {kind} embeddings "
                f"are {anchors.dim}-d"
            )
        # p = 1 keeps the order; clamp(s)^p / |clamp(s)^p| does not depend on s's scale
        wide = relative_representation(x, anchors, self.k + len(self.dead), 1.0, self.chunk_size)
        kk = min(self.k, len(self))
        alive = ~np.isin(wide.indices, self.dead)
        pick = np.argsort(~alive, axis=1, kind="stable")[:, :kk]
        indices = np.take_along_axis(wide.indices, pick, 1)
        values = np.take_along_axis(wide.values, pick, 1).astype(np.float64)
        values /= np.maximum(values.max(axis=1, keepdims=True), np.finfo(np.float64).tiny)
        values **= self.p
        values /= np.maximum(np.linalg.norm(values, axis=1, keepdims=True), 1e-300)
        return SparseRelative(indices, values.astype(np.float32), len(anchors))


def _settings(model: AsifModel) -> dict:
    return dict(
        image_encoder_name=model.image_encoder_name,
        text_encoder_name=model.text_encoder_name,
        k=model.k,
        p=model.p,
        chunk_size=model.chunk_size,
        image_encoder=model.image_encoder,
        text_encoder=model.text_encoder,
    )


def apply_delta(
    model: LiveAsifModel, delta: TableDelta, max_dead: int = MAX_TOMBSTONES
) -> LiveAsifModel:
    """A new live model with the delta applied; `model` is unchanged (requests may hold it).

    Dropped rows become tombstones and written rows are appended in place of spare capacity,
    so the work is proportional to the change. Past `max_dead` tombstones (or a quarter of
    the rows) the anchors are compacted into a fresh copy.
    """
    a = model.anchors
    dead = model.dead
    if delta.dropped:
        dead = np.union1d(dead, a.rows(delta.dropped))
    if delta.written_ids:
        image, text = a.image.append(delta.written_image), a.text.append(delta.written_text)
        a = a.extend(delta.written_ids, delta.written_captions, delta.written_urls, image, text)
    if len(dead) >= len(a):
        raise EmptyInputError(f"version {delta.to_version} of the anchor table has no rows")
    out = LiveAsifModel(a, dead=dead, **_settings(model))
    if len(dead) > min(max_dead, len(a) // 4):
        out = LiveAsifModel.wrap(out.compacted(), copy=False)
    return out
