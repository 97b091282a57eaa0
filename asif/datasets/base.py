"""A labelled image set: images, integer labels and the class names they index."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from asif.encoders.base import ImageInput


@dataclass(frozen=True)
class LabelledImages:
    """`images[i]` shows class `class_names[labels[i]]`; `images` is an (n, h, w[, c]) uint8
    array for sets held in memory, else a sequence (file paths, decoded on access)."""

    name: str
    images: np.ndarray | Sequence[ImageInput]
    labels: np.ndarray
    class_names: list[str]

    def __post_init__(self) -> None:
        if len(self.images) != len(self.labels):
            raise ValueError(f"{self.name}: {len(self.images)} images, {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, rows: np.ndarray) -> LabelledImages:
        """The images at `rows`."""
        rows = np.asarray(rows)
        images: np.ndarray | Sequence[ImageInput]
        if isinstance(self.images, np.ndarray):
            images = self.images[rows]
        else:
            images = [self.images[i] for i in rows]
        return LabelledImages(self.name, images, self.labels[rows], self.class_names)

    def stratified(self, per_class: int, seed: int = 0) -> LabelledImages:
        """Up to `per_class` random images of every class."""
        rng = np.random.default_rng(seed)
        rows = [
            rng.permutation(np.flatnonzero(self.labels == c))[:per_class]
            for c in range(len(self.class_names))
        ]
        return self.subset(np.sort(np.concatenate(rows)))
