"""scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes), shipped with the package."""

from __future__ import annotations

import numpy as np

from asif.datasets.base import LabelledImages

CLASS_NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
SPLITS = ("train", "test", "all")


def digits(split: str = "all") -> LabelledImages:
    """The digits as uint8 8x8 images (16 grey levels stretched to 0..255): "all" of them, or
    one of two fixed random halves, "train" and "test" (the set has no split of its own)."""
    if split not in SPLITS:
        raise ValueError(f"digits split must be one of {SPLITS}, got {split!r}")
    from sklearn.datasets import load_digits  # seconds to import; only the fallback needs it

    data = load_digits()
    images = np.clip(data.images * (255.0 / 16.0), 0, 255).astype(np.uint8)
    labels = data.target.astype(np.int64)
    if split == "all":
        return LabelledImages("digits", images, labels, CLASS_NAMES)
    order = np.random.default_rng(0).permutation(len(labels))
    half = np.sort(order[: len(order) // 2] if split == "train" else order[len(order) // 2 :])
    return LabelledImages(f"digits-{split}", images[half], labels[half], CLASS_NAMES)
