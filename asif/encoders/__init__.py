"""Frozen image and text encoders that map inputs to L2-normalised float32 rows.

Names are imported on first use: torch, timm and sentence-transformers take seconds to import,
and `asif.encoders.base` must stay cheap for modules that only need the interfaces.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from asif.encoders.base import ImageEncoder, ImageInput, TextEncoder

if TYPE_CHECKING:
    from asif.encoders.efficientnet_lite import EfficientNetLiteEncoder
    from asif.encoders.images import decode_image
    from asif.encoders.registry import load_image_encoder, load_text_encoder
    from asif.encoders.sentence_transformer import SentenceTransformerEncoder
    from asif.encoders.timm_encoder import TimmImageEncoder

_LAZY = {
    "EfficientNetLiteEncoder": "asif.encoders.efficientnet_lite",
    "SentenceTransformerEncoder": "asif.encoders.sentence_transformer",
    "TimmImageEncoder": "asif.encoders.timm_encoder",
    "decode_image": "asif.encoders.images",
    "load_image_encoder": "asif.encoders.registry",
    "load_text_encoder": "asif.encoders.registry",
}

__all__ = [
    "EfficientNetLiteEncoder",
    "ImageEncoder",
    "ImageInput",
    "SentenceTransformerEncoder",
    "TextEncoder",
    "TimmImageEncoder",
    "decode_image",
    "load_image_encoder",
    "load_text_encoder",
]


def __getattr__(name: str) -> object:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
