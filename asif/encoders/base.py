"""The encoder interfaces: frozen models that map images or texts to L2-normalised float32 rows."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image

ImageInput = Image.Image | str | Path | bytes | np.ndarray
"""An image as a PIL image, a file path, encoded bytes, or an HxW[xC] uint8 array."""


@runtime_checkable
class ImageEncoder(Protocol):
    """A frozen image model. `name` identifies model and weights; `dim` is the output width."""

    name: str
    dim: int

    def encode(
        self, images: Sequence[ImageInput], batch_size: int = 32, progress: bool = False
    ) -> np.ndarray:
        """Embed images as an (n, dim) float32 array of unit-norm rows."""
        ...


@runtime_checkable
class TextEncoder(Protocol):
    """A frozen text model. `name` identifies model and weights; `dim` is the output width."""

    name: str
    dim: int

    def encode(
        self, texts: Sequence[str], batch_size: int = 64, progress: bool = False
    ) -> np.ndarray:
        """Embed texts as an (n, dim) float32 array of unit-norm rows."""
        ...
