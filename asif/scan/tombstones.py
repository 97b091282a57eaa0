"""A backend whose retired rows are tombstones: removals cost O(removed), not a copy.

Live updates append new anchors in place and retire removed (or rewritten) rows instead of
copying all anchors. A query asks the exact scan for its top k + len(dead) rows, drops the
dead ones and keeps the first k: exactly the top k of the live rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from asif.errors import EmptyInputError
from asif.scan.base import Modality
from asif.scan.exact import ExactScan


@dataclass(frozen=True)
class TombstoneScan:
    """`base`'s anchors less the rows in `dead` (sorted, unique)."""

    base: ExactScan
    dead: np.ndarray

    def __post_init__(self) -> None:
        dead = np.unique(np.asarray(self.dead, dtype=np.int64))
        if len(dead) and (dead[0] < 0 or dead[-1] >= self.base.n_rows):
            raise IndexError(f"tombstones outside the {self.base.n_rows} rows: {dead[[0, -1]]}")
        if len(dead) >= self.base.n_rows:
            raise EmptyInputError("removing these anchors would leave the model with none")
        object.__setattr__(self, "dead", dead)

    @property
    def n_rows(self) -> int:
        return self.base.n_rows

    @property
    def n_live(self) -> int:
        return self.base.n_rows - len(self.dead)

    @property
    def precision(self) -> str:
        return self.base.precision

    def dim(self, modality: Modality) -> int:
        return self.base.dim(modality)

    def live_rows(self) -> np.ndarray:
        """Rows that are not tombstones, in order."""
        return np.setdiff1d(np.arange(self.n_rows), self.dead, assume_unique=True)

    def topk(
        self, queries: np.ndarray, modality: Modality, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        kk = min(k, self.n_live)
        sims, rows = self.base.topk(queries, modality, min(kk + len(self.dead), self.n_rows))
        if not len(self.dead):
            return sims, rows
        alive = ~np.isin(rows, self.dead)
        pick = np.argsort(~alive, axis=1, kind="stable")[:, :kk]
        return np.take_along_axis(sims, pick, 1), np.take_along_axis(rows, pick, 1)

    def compacted(self) -> ExactScan:
        """The live anchors alone, copied into fresh matrices (with spare room to append)."""
        return self.base.delete(self.dead)
