"""scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes), shipped with the package."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits

from asif.datasets.base import LabelledImages

CLASS_NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def digits() -> LabelledImages:
    """All digits as uint8 8x8 images (16 grey levels stretched to 0..255)."""
    data = load_digits()
    images = np.clip(data.images * (255.0 / 16.0), 0, 255).astype(np.uint8)
    return LabelledImages("digits", images, data.target.astype(np.int64), CLASS_NAMES)
