"""Fashion-MNIST from Debian's `dataset-fashion-mnist` package (IDX files, gzip)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from asif.datasets.base import LabelledImages

FASHION_MNIST_ROOT = Path("/usr/share/datasets/fashion-mnist")
CLASS_NAMES = [
    "T-shirt",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle boot",
]
_FILES = {"train": "train", "test": "t10k"}


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        raw = f.read()
    dims = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def installed(root: str | Path = FASHION_MNIST_ROOT) -> bool:
    """Whether both splits are at `root` (the Debian package is optional)."""
    return all((Path(root) / f"{f}-images-idx3-ubyte.gz").is_file() for f in _FILES.values())


def fashion_mnist(split: str = "test", root: str | Path = FASHION_MNIST_ROOT) -> LabelledImages:
    """The 60k train or 10k test 28x28 grayscale images with their 10 clothing classes."""
    if split not in _FILES:
        raise ValueError(f"split must be one of {sorted(_FILES)}, got {split!r}")
    root = Path(root)
    images = root / f"{_FILES[split]}-images-idx3-ubyte.gz"
    if not images.is_file():
        raise FileNotFoundError(
            f"Fashion-MNIST not found at {root}: install it with "
            "`apt-get install dataset-fashion-mnist` or pass root="
        )
    labels = _read_idx(root / f"{_FILES[split]}-labels-idx1-ubyte.gz").astype(np.int64)
    return LabelledImages(f"fashion-mnist-{split}", _read_idx(images), labels, CLASS_NAMES)
