"""EfficientNet-Lite with shipped weights: loads exactly, preprocesses right, embeds sensibly."""

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms

from asif.encoders.base import ImageEncoder
from asif.encoders.efficientnet_lite import EfficientNetLiteEncoder, shipped_weights

CATS = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian cat
COFFEE = {504, 967, 968}  # coffee mug, espresso, cup


@pytest.fixture(scope="module")
def lite0() -> EfficientNetLiteEncoder:
    return EfficientNetLiteEncoder("lite0", device="cpu")


@pytest.fixture(scope="module")
def lite2() -> EfficientNetLiteEncoder:
    return EfficientNetLiteEncoder("lite2", device="cpu")


@pytest.fixture(params=["lite0", "lite2"])
def encoder(request: pytest.FixtureRequest) -> EfficientNetLiteEncoder:
    """Each shipped variant in turn (the module's fixture of that name)."""
    return request.getfixturevalue(request.param)


def _logits(encoder: EfficientNetLiteEncoder, *photos: np.ndarray) -> torch.Tensor:
    batch = torch.stack([encoder.transform(Image.fromarray(p)) for p in photos])
    with torch.inference_mode():
        return encoder.model(batch)


def test_identity(lite0: EfficientNetLiteEncoder, lite2: EfficientNetLiteEncoder) -> None:
    for encoder, size in ((lite0, 224), (lite2, 260)):
        assert isinstance(encoder, ImageEncoder)
        assert encoder.dim == 1280
        assert encoder.image_size == size
        assert not encoder.model.training
    assert (lite0.name, lite2.name) == ("efficientnet-lite0", "efficientnet-lite2")


def test_shipped_weights_match_the_architecture_exactly(encoder: EfficientNetLiteEncoder) -> None:
    shipped = torch.load(shipped_weights(encoder.variant), map_location="cpu", weights_only=True)
    model_state = encoder.model.state_dict()
    assert shipped.keys() == model_state.keys()
    for key, value in shipped.items():
        assert torch.equal(value, model_state[key]), key


def test_imagenet_predictions_on_real_photos(
    encoder: EfficientNetLiteEncoder, photos: dict[str, np.ndarray]
) -> None:
    cat, coffee = _logits(encoder, photos["chelsea"], photos["coffee"])
    assert int(cat.argmax()) in CATS
    assert set(coffee.topk(3).indices.tolist()) & COFFEE


def test_normalisation_fits_the_stem_batchnorm(
    lite2: EfficientNetLiteEncoder, photos: dict[str, np.ndarray]
) -> None:
    """The weights came from TensorFlow ((x - 127) / 128): its stem activations match the BN
    running variances, ImageNet mean/std's are several times too wide."""
    imagenet = transforms.Compose(
        lite2.transform.transforms[:-1]
        + [transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))]
    )
    images = [Image.fromarray(p).convert("RGB") for p in photos.values()]
    bn = lite2.model._bn0
    live = bn.running_var > 1e-2

    def mismatch(transform: transforms.Compose) -> float:
        with torch.inference_mode():
            stem = lite2.model._conv_stem(torch.stack([transform(i) for i in images]))
        ratio = stem.var(dim=(0, 2, 3))[live] / bn.running_var[live]
        return float(ratio.log().abs().mean())

    assert mismatch(lite2.transform) < 0.6 < 1.0 < mismatch(imagenet)


def test_embeddings_shape_norm_and_batch_invariance(
    lite0: EfficientNetLiteEncoder, photos: dict[str, np.ndarray]
) -> None:
    images = list(photos.values())
    out = lite0.encode(images, batch_size=4)
    assert out.shape == (4, 1280) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(lite0.encode(images, batch_size=1), out, atol=1e-5)
    np.testing.assert_allclose(lite0.encode(images[::-1], batch_size=3)[::-1], out, atol=1e-5)
    assert lite0.encode([]).shape == (0, 1280)


def test_input_forms_embed_identically(
    lite0: EfficientNetLiteEncoder, photos: dict[str, np.ndarray], tmp_path: Path
) -> None:
    photo = photos["astronaut"]
    path = tmp_path / "astronaut.png"
    Image.fromarray(photo).save(path)
    buffer = io.BytesIO()
    Image.fromarray(photo).save(buffer, "PNG")
    out = lite0.encode([photo, Image.fromarray(photo), path, str(path), buffer.getvalue()])
    np.testing.assert_allclose(out, np.repeat(out[:1], 5, axis=0), atol=1e-6)


def test_semantic_neighbours(
    encoder: EfficientNetLiteEncoder, photos: dict[str, np.ndarray]
) -> None:
    chelsea = photos["chelsea"]
    flipped = chelsea[:, ::-1]
    cropped = chelsea[30:270, 60:400]
    cat, flip, crop, coffee, camera = encoder.encode(
        [chelsea, flipped, cropped, photos["coffee"], photos["camera"]]
    )
    assert min(cat @ flip, cat @ crop) > max(cat @ coffee, cat @ camera) + 0.3


def test_bad_construction(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown EfficientNet-Lite variant"):
        EfficientNetLiteEncoder("lite9")
    with pytest.raises(ValueError, match="pass weights_path"):
        EfficientNetLiteEncoder("lite3")
    with pytest.raises(FileNotFoundError, match="nothing.pth"):
        EfficientNetLiteEncoder("lite0", weights_path=tmp_path / "nothing.pth")
    garbage = tmp_path / "garbage.pth"
    garbage.write_text("not weights")
    with pytest.raises(ValueError, match="cannot read weights file .*garbage.pth"):
        EfficientNetLiteEncoder("lite0", weights_path=garbage)
    with pytest.raises(ValueError, match="does not fit efficientnet-lite2"):
        EfficientNetLiteEncoder("lite2", weights_path=shipped_weights("lite0"), device="cpu")


def test_explicit_weights_are_named() -> None:
    encoder = EfficientNetLiteEncoder(
        "efficientnet-lite0", weights_path=shipped_weights("lite0"), device="cpu"
    )
    assert encoder.name == f"efficientnet-lite0@{shipped_weights('lite0').name}"
