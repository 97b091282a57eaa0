"""The shared batching loop, checked with a tiny deterministic model (no weights needed)."""

import numpy as np
import pytest
import torch
from torchvision import transforms

from asif.encoders.common import TorchImageEncoder, check_batch, resolve_device
from asif.errors import ImageDecodeError


class _ColourStats(TorchImageEncoder):
    """Per-channel mean and std of a 16x16 thumbnail: 6-d features that depend on the image."""

    def __init__(self) -> None:
        self.name = "colour-stats"
        self.dim = 6
        self.device = "cpu"
        self.model = torch.nn.Identity()
        self.transform = transforms.Compose([transforms.Resize((16, 16)), transforms.ToTensor()])
        self.batch_sizes: list[int] = []

    def features(self, batch: torch.Tensor) -> torch.Tensor:
        self.batch_sizes.append(len(batch))
        return torch.cat([batch.mean(dim=(2, 3)), batch.std(dim=(2, 3))], dim=1) + 0.01


@pytest.fixture()
def encoder() -> _ColourStats:
    return _ColourStats()


def test_shape_dtype_norm_and_batching(encoder: _ColourStats, photos: dict) -> None:
    images = [photos["chelsea"], photos["coffee"], photos["camera"], photos["astronaut"]] * 2
    out = encoder.encode(images, batch_size=3)
    assert out.shape == (8, 6) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)
    assert encoder.batch_sizes == [3, 3, 2]
    np.testing.assert_allclose(encoder.encode(images, batch_size=8), out, atol=1e-6)


def test_empty_input(encoder: _ColourStats) -> None:
    out = encoder.encode([])
    assert out.shape == (0, 6) and out.dtype == np.float32


def test_bad_item_is_named_by_index(encoder: _ColourStats, photos: dict) -> None:
    with pytest.raises(ImageDecodeError, match="image #2"):
        encoder.encode([photos["chelsea"], photos["coffee"], b"junk"], batch_size=2)


def test_progress_bar(encoder: _ColourStats, photos: dict, capsys: pytest.CaptureFixture) -> None:
    encoder.encode([photos["coffee"]] * 3, batch_size=2, progress=True)
    assert "colour-stats" in capsys.readouterr().err
    encoder.encode([photos["coffee"]], progress=False)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("single", ["cat.jpg", b"\xff\xd8", np.zeros((4, 4), np.uint8)])
def test_single_item_instead_of_a_list(encoder: _ColourStats, single: object) -> None:
    with pytest.raises(TypeError, match="sequence of images"):
        encoder.encode(single)  # type: ignore[arg-type]


@pytest.mark.parametrize("batch_size", [0, -1, 2.5])
def test_bad_batch_size(batch_size: object) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        check_batch([], batch_size, "images")  # type: ignore[arg-type]


def test_resolve_device() -> None:
    assert resolve_device("cpu") == "cpu"
    assert resolve_device(None) == ("cuda" if torch.cuda.is_available() else "cpu")
