"""Encoder tests run offline: the hub is switched off before anything imports huggingface_hub."""

import os

import numpy as np
import pytest
from skimage import data

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")


@pytest.fixture(scope="session")
def photos() -> dict[str, np.ndarray]:
    """Real photos from scikit-image, as uint8 arrays (camera is grayscale HxW)."""
    return {
        "chelsea": data.chelsea(),
        "coffee": data.coffee(),
        "astronaut": data.astronaut(),
        "camera": data.camera(),
    }
