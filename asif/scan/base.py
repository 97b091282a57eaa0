"""The one interface every top-k backend offers to the model: `TopK`."""

from __future__ import annotations

from typing import Literal, Protocol

import numpy as np

Modality = Literal["image", "text"]
MODALITIES: tuple[Modality, ...] = ("image", "text")


class TopK(Protocol):
    """Finds each query's k most similar anchors of one modality.

    Rows are positions in the model's anchor set; `n_rows` of them exist, `n_live` can be
    found (a backend may hold retired rows). Queries are unit-norm float32 (n, d) rows.
    """

    @property
    def n_rows(self) -> int: ...

    @property
    def n_live(self) -> int: ...

    @property
    def precision(self) -> str: ...

    def dim(self, modality: Modality) -> int: ...

    def topk(
        self, queries: np.ndarray, modality: Modality, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """(similarities float32, rows int64), each (n, min(k, n_live)), best first; ties go
        to the lower row."""
        ...
