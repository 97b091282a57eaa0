"""timm encoders from local weight files (the hub is offline here): exact, strict, named."""

import re
from pathlib import Path

import huggingface_hub
import numpy as np
import pytest
import timm
import torch
from PIL import Image
from safetensors.torch import save_file
from timm.data import create_transform, resolve_data_config

from asif.encoders.base import ImageEncoder
from asif.encoders.registry import load_image_encoder
from asif.encoders.timm_encoder import TimmImageEncoder


@pytest.fixture(scope="module")
def reference() -> torch.nn.Module:
    torch.manual_seed(0)
    return timm.create_model("resnet18", pretrained=False, num_classes=0).eval()


@pytest.fixture(scope="module")
def weights(reference: torch.nn.Module, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("timm") / "resnet18-local.pth"
    torch.save(reference.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def encoder(weights: Path) -> TimmImageEncoder:
    return load_image_encoder(f"timm:resnet18@{weights}", device="cpu")


def _direct(model: torch.nn.Module, photos: list[np.ndarray]) -> np.ndarray:
    transform = create_transform(**resolve_data_config({}, model=model), is_training=False)
    batch = torch.stack([transform(Image.fromarray(p).convert("RGB")) for p in photos])
    with torch.inference_mode():
        feats = model.forward_head(model.forward_features(batch), pre_logits=True)
    return torch.nn.functional.normalize(feats, dim=1).numpy()


def test_identity(encoder: TimmImageEncoder) -> None:
    assert isinstance(encoder, ImageEncoder)
    assert encoder.name == "timm:resnet18@resnet18-local.pth"
    assert encoder.dim == 512
    assert not encoder.model.training


def test_matches_the_directly_computed_features(
    encoder: TimmImageEncoder, reference: torch.nn.Module, photos: dict[str, np.ndarray]
) -> None:
    images = [photos["chelsea"], photos["camera"], photos["coffee"]]
    out = encoder.encode(images, batch_size=2)
    assert out.shape == (3, 512) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(out, _direct(reference, images), atol=1e-5)
    np.testing.assert_allclose(encoder.encode(images, batch_size=1), out, atol=1e-5)
    assert encoder.encode([]).shape == (0, 512)


@pytest.mark.parametrize("fmt", ["wrapped-pth", "safetensors"])
def test_full_checkpoints_with_classifier_load(
    fmt: str, tmp_path: Path, photos: dict[str, np.ndarray]
) -> None:
    torch.manual_seed(1)
    classifier_model = timm.create_model("resnet18", pretrained=False, num_classes=10).eval()
    state = classifier_model.state_dict()
    assert "fc.weight" in state
    if fmt == "safetensors":
        path = tmp_path / "model.safetensors"
        save_file(state, str(path))
    else:
        path = tmp_path / "checkpoint.pth"
        torch.save({"state_dict": state, "epoch": 3}, path)
    encoder = TimmImageEncoder("resnet18", weights=path, device="cpu")
    images = [photos["astronaut"]]
    np.testing.assert_allclose(encoder.encode(images), _direct(classifier_model, images), atol=1e-5)


def test_weights_that_do_not_fit_are_rejected(reference: torch.nn.Module, tmp_path: Path) -> None:
    state = reference.state_dict()
    missing = {k: v for k, v in state.items() if not k.startswith("layer4.")}
    extra = {**state, "projector.weight": torch.zeros(3)}
    reshaped = {**state, "conv1.weight": torch.zeros(64, 3, 3, 3)}
    messages = {}
    for label, bad in (("missing", missing), ("unexpected", extra), ("size mismatch", reshaped)):
        path = tmp_path / f"{label}.pth"
        torch.save(bad, path)
        with pytest.raises(ValueError, match=f"{label}.pth does not fit") as e:
            TimmImageEncoder("resnet18", weights=path)
        messages[label] = str(e.value)
    assert all("timm model 'resnet18'" in message for message in messages.values())
    assert re.search(r"[1-9]\d* missing keys \['layer4\.", messages["missing"])
    assert "1 unexpected keys ['projector.weight']" in messages["unexpected"]


def test_unreadable_and_missing_files(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read weights file .*garbage.pth"):
        TimmImageEncoder("resnet18", weights=garbage)
    with pytest.raises(FileNotFoundError, match="absent.pth"):
        TimmImageEncoder("resnet18", weights=tmp_path / "absent.pth")


def test_hub_weights_offline_give_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(RuntimeError, match="pass a local weights file") as info:
        TimmImageEncoder("resnet18", device="cpu")
    assert "timm:resnet18@PATH" in str(info.value)


def test_unknown_model_suggests_names() -> None:
    with pytest.raises(ValueError, match="unknown timm model 'resnet_18'.*resnet18"):
        TimmImageEncoder("resnet_18")


def test_random_init_is_named_as_such() -> None:
    encoder = TimmImageEncoder("resnet18", pretrained=False, device="cpu")
    assert encoder.name == "timm:resnet18@random-init"
