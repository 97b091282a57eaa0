"""Build encoders from short string specs, cached per (spec, device, settings) in this process.

Encoder modules are imported on demand: each pulls in a heavy library (timm, sentence-transformers).
"""

from __future__ import annotations

from functools import lru_cache

from asif.encoders.base import ImageEncoder, TextEncoder
from asif.encoders.common import EXACT, EncoderSettings, resolve_device
from asif.errors import EncoderError

SHIPPED_IMAGE = ("efficientnet-lite0", "efficientnet-lite2")
SHIPPED_TEXT = ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2")
IMAGE_SPECS = (
    '"efficientnet-lite2" (shipped weights)',
    '"efficientnet-lite0" (shipped weights)',
    '"timm:<model_name>" (weights from the hub; online only)',
    '"timm:<model_name>@<path to a local state dict file>"',
)
TEXT_SPECS = (
    '"all-MiniLM-L6-v2" or "sentence-transformers/all-MiniLM-L6-v2" (shipped model)',
    '"<path to a local sentence-transformers folder>"',
    '"<org>/<model>" on the Hugging Face hub (online only)',
)


def load_image_encoder(
    spec: str = "efficientnet-lite2",
    device: str | None = None,
    settings: EncoderSettings = EXACT,
) -> ImageEncoder:
    """The image encoder named by `spec` (see `IMAGE_SPECS`), running as `settings` say
    (`asif.encoders.common.FAST`: the fast path); loaded once per (spec, device, settings)."""
    spec = spec.strip()
    if spec.lower() in SHIPPED_IMAGE:
        spec = spec.lower()
    return _image_encoder(spec, resolve_device(device), settings)


def load_text_encoder(
    spec: str = "all-MiniLM-L6-v2",
    device: str | None = None,
    settings: EncoderSettings = EXACT,
) -> TextEncoder:
    """The text encoder named by `spec` (see `TEXT_SPECS`), running in `settings.precision`;
    loaded once per (spec, device, settings)."""
    spec = spec.strip()
    if spec in SHIPPED_TEXT:
        spec = SHIPPED_TEXT[0]
    return _text_encoder(spec, resolve_device(device), settings)


@lru_cache(maxsize=8)
def _image_encoder(spec: str, device: str, settings: EncoderSettings) -> ImageEncoder:
    if spec in SHIPPED_IMAGE:
        from asif.encoders.efficientnet_lite import EfficientNetLiteEncoder

        return EfficientNetLiteEncoder(spec, device=device, settings=settings)
    if spec.startswith("timm:"):
        model_name, _, weights = spec.removeprefix("timm:").partition("@")
        if model_name.strip():
            from asif.encoders.timm_encoder import TimmImageEncoder

            return TimmImageEncoder(
                model_name.strip(),
                weights=weights.strip() or None,
                device=device,
                settings=settings,
            )
    raise EncoderError(f"unknown image encoder spec {spec!r}; accepted: {', '.join(IMAGE_SPECS)}")


@lru_cache(maxsize=8)
def _text_encoder(spec: str, device: str, settings: EncoderSettings) -> TextEncoder:
    if not spec:
        raise EncoderError(f"empty text encoder spec; accepted: {', '.join(TEXT_SPECS)}")
    from asif.encoders.sentence_transformer import SentenceTransformerEncoder

    name = None if spec == SHIPPED_TEXT[0] else spec
    return SentenceTransformerEncoder(name, device=device, settings=settings)
