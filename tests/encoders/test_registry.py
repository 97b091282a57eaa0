"""Specs resolve to the right encoders, loads are cached, bad specs explain what is accepted."""

from pathlib import Path

import pytest

from asif.encoders.registry import load_image_encoder, load_text_encoder
from asif.encoders.sentence_transformer import shipped_model_path
from asif.errors import EncoderError


def test_shipped_image_encoders_are_cached_per_spec_and_device() -> None:
    lite0 = load_image_encoder("efficientnet-lite0", device="cpu")
    assert lite0.name == "efficientnet-lite0" and lite0.dim == 1280
    assert load_image_encoder(" EfficientNet-Lite0 ", device="cpu") is lite0
    assert load_image_encoder("efficientnet-lite2", device="cpu").name == "efficientnet-lite2"


def test_default_device_shares_the_cache() -> None:
    encoder = load_image_encoder()
    assert encoder.name == "efficientnet-lite2"
    assert load_image_encoder("efficientnet-lite2", device=encoder.device) is encoder


def test_text_aliases_share_one_shipped_model() -> None:
    default = load_text_encoder(device="cpu")
    assert default.name == "sentence-transformers/all-MiniLM-L6-v2" and default.dim == 384
    assert load_text_encoder("sentence-transformers/all-MiniLM-L6-v2", device="cpu") is default
    assert load_text_encoder(str(shipped_model_path()), device="cpu").name == default.name


@pytest.mark.parametrize("spec", ["vit-b16", "efficientnet-lite3", "timm:", "timm:@w.pth", ""])
def test_unknown_image_specs_list_what_is_accepted(spec: str) -> None:
    with pytest.raises(EncoderError, match="unknown image encoder spec.*accepted:.*timm:<model"):
        load_image_encoder(spec)


def test_timm_spec_with_missing_weights(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="absent.safetensors"):
        load_image_encoder(f"timm:resnet18@{tmp_path / 'absent.safetensors'}")


def test_timm_spec_with_unknown_model() -> None:
    with pytest.raises(EncoderError, match="unknown timm model 'no_such_net'"):
        load_image_encoder("timm:no_such_net")


def test_bad_text_specs(tmp_path: Path) -> None:
    with pytest.raises(EncoderError, match="empty text encoder spec; accepted:"):
        load_text_encoder("  ")
    with pytest.raises(FileNotFoundError, match="missing-model"):
        load_text_encoder(str(tmp_path / "missing-model"))
