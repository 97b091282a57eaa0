"""Shared machinery of the torch encoders: device choice, input checks, batched image encoding."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from asif.encoders.base import ImageInput
from asif.encoders.images import decode_image
from asif.errors import SettingsError


def resolve_device(device: str | None) -> str:
    """`device` as given, else "cuda" when available, else "cpu"."""
    if device:
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def check_batch(items: object, batch_size: int, what: str) -> None:
    """Reject a single item passed where a sequence is expected, and non-positive batch sizes."""
    if isinstance(items, str | bytes | os.PathLike | np.ndarray | Image.Image):
        raise TypeError(f"encode() takes a sequence of {what}, not a single {type(items).__name__}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise SettingsError(f"batch_size must be a positive integer, got {batch_size!r}")


class TorchImageEncoder(ABC):
    """An image encoder from a torch model, a PIL->tensor transform and a feature function."""

    name: str
    dim: int
    device: str
    model: torch.nn.Module
    transform: Callable[[Image.Image], torch.Tensor]

    @abstractmethod
    def features(self, batch: torch.Tensor) -> torch.Tensor:
        """Raw (n, dim) features of a preprocessed (n, 3, H, W) batch."""

    def encode(
        self, images: Sequence[ImageInput], batch_size: int = 32, progress: bool = False
    ) -> np.ndarray:
        """Embed images as an (n, dim) float32 array of unit-norm rows."""
        check_batch(images, batch_size, "images")
        out = np.empty((len(images), self.dim), dtype=np.float32)
        with (
            tqdm(total=len(images), unit="img", desc=self.name, disable=not progress) as bar,
            torch.inference_mode(),
        ):
            for start in range(0, len(images), batch_size):
                chunk = images[start : start + batch_size]
                batch = torch.stack(
                    [
                        self.transform(decode_image(item, source=f"image #{start + i}"))
                        for i, item in enumerate(chunk)
                    ]
                ).to(self.device)
                feats = torch.nn.functional.normalize(self.features(batch).float(), dim=1)
                out[start : start + len(chunk)] = feats.cpu().numpy()
                bar.update(len(chunk))
        return out
