"""The anchor pairs' identity: ids, captions and urls, row-aligned with the backend's rows."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from asif.errors import EmptyInputError
from asif.store.ids import anchor_id


@dataclass
class AnchorSet:
    """Row i of every backend is anchor pair i: `ids[i]`, `captions[i]`, `urls[i]`."""

    ids: list[str]
    captions: list[str]
    urls: Sequence[str | None]
    _row: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        n = len(self.ids)
        if len({n, len(self.captions), len(self.urls)}) != 1:
            raise ValueError(
                f"anchor columns differ in length: {len(self.ids)} ids, {len(self.captions)} "
                f"captions, {len(self.urls)} urls"
            )
        self._row = {a: i for i, a in enumerate(self.ids)}
        if len(self._row) != n:
            raise ValueError("anchor ids must be unique")

    @classmethod
    def build(
        cls,
        captions: Sequence[str],
        image_embeddings: np.ndarray,
        ids: Sequence[str] | None = None,
        urls: Sequence[str | None] | None = None,
    ) -> AnchorSet:
        """Anchors for new pairs; ids default to `anchor_id(url, caption)`, or the image
        embedding's hash where there is no url."""
        captions = list(captions)
        if not captions:
            raise EmptyInputError("no anchor pairs given")
        urls = list(urls) if urls is not None else [None] * len(captions)
        if ids is None:
            rows = np.asarray(image_embeddings, dtype=np.float32)
            ids = [
                anchor_id(u or "sha256:" + hashlib.sha256(row.tobytes()).hexdigest(), c)
                for u, c, row in zip(urls, captions, rows, strict=False)
            ]
        return cls(list(ids), captions, urls)

    def __len__(self) -> int:
        return len(self.ids)

    def rows(self, ids: Sequence[str]) -> np.ndarray:
        """Row numbers of `ids`; unknown ids are a KeyError naming them."""
        missing = [a for a in ids if a not in self._row]
        if missing:
            raise KeyError(f"no anchors with ids {missing[:5]}{'...' if len(missing) > 5 else ''}")
        return np.array([self._row[a] for a in ids], dtype=np.int64)

    def extend(self, other: AnchorSet) -> AnchorSet:
        """This set followed by `other`, without re-indexing the old ids.

        An id of `other` equal to an old one points `rows()` at the new row (the caller
        retires the old row); this set is unchanged.
        """
        out = copy.copy(self)
        out.ids, out.captions = self.ids + other.ids, self.captions + other.captions
        out.urls = [*self.urls, *other.urls]
        out._row = self._row.copy()
        out._row.update(zip(other.ids, range(len(self), len(self) + len(other)), strict=True))
        return out

    def take(self, rows: np.ndarray) -> AnchorSet:
        """The anchors at `rows` (indices or boolean mask)."""
        picked = np.flatnonzero(rows) if np.asarray(rows).dtype == bool else np.asarray(rows)
        at = picked.tolist()
        return AnchorSet(
            [self.ids[i] for i in at], [self.captions[i] for i in at], [self.urls[i] for i in at]
        )
