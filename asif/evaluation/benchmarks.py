"""Benchmarks: what a zero-shot evaluation measures on, behind one interface,
`load_benchmark(name, split, root, limit)`.

A `Benchmark` is a labelled image set (`asif.datasets.LabelledImages`, or one read here from
an archive, a folder tree or torchvision) plus the prompt templates to classify it with and a
key naming the exact images. Registered names: "fashion-mnist" and "digits" (ship here),
"cifar10" / "cifar100" (the python-pickle archives: a folder or the `.tar.gz`), "imagenet"
(class folders, or the flat validation images with the devkit), "imagenet-v2" (folders
0..999), "pets" (the Oxford-IIIT files, or breed folders), "image-folder" (a
`root/<class>/<image>` tree, optionally `root/<split>/<class>/<image>`), and "torchvision:<Name>"
(`torchvision.datasets.<Name>(root, download=False)`). ImageNet and Pets are named as CLIP names
them by default, so accuracies compare with published zero-shot tables.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import pickle
import tarfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar, overload

import numpy as np

from asif.datasets import FASHION_MNIST_ROOT, LabelledImages, digits, fashion_mnist
from asif.datasets.imagenet_val import load_imagenet_val, val_images_folder
from asif.datasets.pets import load_pets, pets_root
from asif.encoders.images import IMAGE_SUFFIXES
from asif.errors import DatasetError, require_positive_int
from asif.evaluation.imagenet import NAME_SOURCES, clip_class_names, imagenet_names
from asif.evaluation.metrics import CLASSIFICATION
from asif.evaluation.retrieval_benchmarks import (
    RETRIEVAL_BENCHMARKS,
    RetrievalBenchmark,
    load_retrieval_benchmark,
)
from asif.evaluation.templates import CIFAR_TEMPLATES, IMAGENET_TEMPLATES, PETS_TEMPLATES
from asif.model.zero_shot import DEFAULT_TEMPLATES

ClassNames = Mapping[str, str] | Sequence[str] | str | Path | None
"""Folder name -> class name: a mapping, a list indexed by integer folder names, a JSON file."""


@dataclass(frozen=True)
class Benchmark:
    """A labelled test set with its zero-shot prompt templates.

    `key` names the exact images (dataset, split, root, class names, limit, seed); it keys
    the embedding cache and the evaluations table.
    """

    name: str
    split: str
    data: LabelledImages
    templates: tuple[str, ...]
    key: str
    task: ClassVar[str] = CLASSIFICATION

    @property
    def fingerprint(self) -> str:
        """A hash of the labels: cached embeddings of the same key are stale if it changed."""
        return hashlib.sha256(np.asarray(self.labels, dtype=np.int64).tobytes()).hexdigest()

    @property
    def class_names(self) -> list[str]:
        return self.data.class_names

    @property
    def labels(self) -> np.ndarray:
        return self.data.labels

    def __len__(self) -> int:
        return len(self.data)


AnyBenchmark = Benchmark | RetrievalBenchmark
Loader = Callable[..., tuple[LabelledImages, tuple[str, ...]]]


def _fashion_mnist(split: str, root: Path | None, **_: Any) -> tuple[LabelledImages, tuple]:
    return fashion_mnist(split, root or FASHION_MNIST_ROOT), DEFAULT_TEMPLATES


def _digits(split: str, root: Path | None, **_: Any) -> tuple[LabelledImages, tuple]:
    return digits(split), DEFAULT_TEMPLATES


# ----------------------------------------------------------------------------------- CIFAR


def _unpickle(raw: bytes) -> dict[str, Any]:
    out = pickle.loads(raw, encoding="bytes")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in out.items()}


def _cifar_files(root: Path) -> Callable[[str], bytes]:
    """A reader of archive members by base name, from a folder (or a parent) or a .tar.gz."""
    if root.is_file():
        members: dict[str, bytes] = {}
        with tarfile.open(root) as tar:
            for m in tar.getmembers():
                f = tar.extractfile(m) if m.isfile() else None
                if f is not None:
                    members[Path(m.name).name] = f.read()
        return members.__getitem__
    folders = [root, *sorted(p for p in root.iterdir() if p.is_dir())]
    for folder in folders:
        if (folder / "test_batch").is_file() or (folder / "test").is_file():
            return _folder_reader(folder)
    raise FileNotFoundError(
        f"no CIFAR python archive at {root}: expected data_batch_*/test_batch/batches.meta "
        "(CIFAR-10) or train/test/meta (CIFAR-100), in it, a subfolder, or a .tar.gz"
    )


def _folder_reader(folder: Path) -> Callable[[str], bytes]:
    return lambda name: (folder / name).read_bytes()


def load_cifar(root: str | Path, split: str = "test", fine: bool = True) -> LabelledImages:
    """CIFAR-10 or CIFAR-100 (detected from the files) from the python-pickle archive."""
    if split not in ("train", "test"):
        raise ValueError(f"CIFAR split must be 'train' or 'test', got {split!r}")
    read = _cifar_files(Path(root))
    try:
        meta = _unpickle(read("batches.meta"))
        names = meta["label_names"]
        parts = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
        label_key, dataset = "labels", "cifar10"
    except (KeyError, FileNotFoundError):
        meta = _unpickle(read("meta"))
        names = meta["fine_label_names" if fine else "coarse_label_names"]
        parts, label_key, dataset = [split], "fine_labels" if fine else "coarse_labels", "cifar100"
    batches = [_unpickle(read(p)) for p in parts]
    images = np.concatenate([np.asarray(b["data"], dtype=np.uint8) for b in batches])
    labels = np.concatenate([np.asarray(b[label_key], dtype=np.int64) for b in batches])
    images = images.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    class_names = [(n.decode() if isinstance(n, bytes) else n).replace("_", " ") for n in names]
    return LabelledImages(f"{dataset}-{split}", images, labels, class_names)


def _cifar(split: str, root: Path | None, **_: Any) -> tuple[LabelledImages, tuple]:
    if root is None:
        raise ValueError("CIFAR needs root= (the extracted folder or the .tar.gz)")
    return load_cifar(root, split), CIFAR_TEMPLATES


# ----------------------------------------------------------------------------- image folder


def _class_name_map(class_names: ClassNames) -> Callable[[str], str]:
    if class_names is None:
        return lambda folder: folder.replace("_", " ")
    given: Mapping[str, str] | Sequence[str] = (
        json.loads(Path(class_names).read_text())
        if isinstance(class_names, str | Path)
        else class_names
    )
    if isinstance(given, Mapping):
        mapping = given
        return lambda folder: str(mapping.get(folder, folder))
    names = list(given)
    return lambda folder: names[int(folder)] if folder.isdigit() else folder


def load_image_folder(
    root: str | Path, split: str | None = None, class_names: ClassNames = None
) -> LabelledImages:
    """Images in `root/<class>/...` (or `root/<split>/<class>/...`), as file paths.

    Classes are the sorted folder names (numerically if all are integers, as in ImageNet-v2),
    shown as `class_names[folder]` when a mapping, list or JSON file of them is given.
    """
    root = Path(root)
    if split and (root / split).is_dir():
        root = root / split
    folders = [p for p in root.iterdir() if p.is_dir()] if root.is_dir() else []
    if not folders:
        raise FileNotFoundError(f"no class folders under {root}")
    numeric = all(p.name.isdigit() for p in folders)
    folders.sort(key=lambda p: int(p.name) if numeric else p.name)
    name_of = _class_name_map(class_names)
    paths: list[Path] = []
    labels: list[int] = []
    for label, folder in enumerate(folders):
        files = sorted(f for f in folder.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
        paths += files
        labels += [label] * len(files)
    names = [name_of(p.name) for p in folders]
    return LabelledImages(root.name, paths, np.asarray(labels, dtype=np.int64), names)


def _image_folder(
    split: str, root: Path | None, class_names: ClassNames = None, **_: Any
) -> tuple[LabelledImages, tuple]:
    if root is None:
        raise ValueError("an image-folder benchmark needs root=")
    return load_image_folder(root, split, class_names), DEFAULT_TEMPLATES


# ------------------------------------------------------------------------- ImageNet, Pets


def _renamed(data: LabelledImages, class_names: ClassNames) -> LabelledImages:
    name_of = _class_name_map(class_names)
    return replace(data, class_names=[name_of(c) for c in data.class_names])


def _imagenet_names(class_names: ClassNames) -> ClassNames:
    """CLIP's curated names by default, "wordnet" for the synsets' lemmas, else the caller's."""
    if class_names is None:
        return imagenet_names()
    if isinstance(class_names, str) and class_names in NAME_SOURCES:
        return imagenet_names(class_names)
    return class_names


def _imagenet(
    split: str,
    root: Path | None,
    class_names: ClassNames = None,
    devkit: str | Path | None = None,
    **_: Any,
) -> tuple[LabelledImages, tuple]:
    """Class folders `root/[split/]<wnid>/...`, or (for any split but "train") the flat
    validation images with the devkit."""
    if root is None:
        raise ValueError("imagenet needs root= (class folders, or the validation images)")
    names = _imagenet_names(class_names)
    if split != "train" and val_images_folder(root) is not None:
        return _renamed(load_imagenet_val(root, devkit), names), IMAGENET_TEMPLATES
    return load_image_folder(root, split, names), IMAGENET_TEMPLATES


def _imagenet_v2(
    split: str, root: Path | None, class_names: ClassNames = None, **_: Any
) -> tuple[LabelledImages, tuple]:
    if root is None:
        raise ValueError("imagenet-v2 needs root= (the folders 0..999)")
    return load_image_folder(root, split, _imagenet_names(class_names)), IMAGENET_TEMPLATES


def _clip_pets(data: LabelledImages) -> LabelledImages:
    """CLIP's curated names when the classes are the 37 standard breeds (matched by name:
    "american_bulldog" or "American Bulldog"), else `data` as it is."""

    def key(name: str) -> str:
        return name.replace("_", " ").lower()

    curated = {key(name): name for name in clip_class_names("pets")}
    if sorted(map(key, data.class_names)) != sorted(curated):
        return data
    return replace(data, class_names=[curated[key(c)] for c in data.class_names])


def _pets(
    split: str, root: Path | None, class_names: ClassNames = None, **_: Any
) -> tuple[LabelledImages, tuple]:
    """The Oxford-IIIT files when there (`root[/oxford-iiit-pet]/annotations`), else breed
    folders; `class_names` map the breed names read."""
    if root is None:
        raise ValueError("pets needs root= (the Oxford-IIIT Pet folder or breed folders)")
    if (pets_root(root) / "annotations").is_dir():
        data = load_pets(root, split)
        data = data if class_names is None else _renamed(data, class_names)
    else:
        data = load_image_folder(root, split, class_names)
    return (_clip_pets(data) if class_names is None else data), PETS_TEMPLATES


# ------------------------------------------------------------------------------ torchvision


class _DatasetImages(Sequence):
    """The images of a torchvision dataset, decoded on access."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    @overload
    def __getitem__(self, i: int) -> Any: ...
    @overload
    def __getitem__(self, i: slice) -> list[Any]: ...
    def __getitem__(self, i: int | slice) -> Any:
        if isinstance(i, slice):
            return [self.dataset[j][0] for j in range(*i.indices(len(self)))]
        return self.dataset[i][0]


def load_torchvision(
    name: str, root: str | Path, split: str = "test", **kwargs: Any
) -> LabelledImages:
    """`torchvision.datasets.<name>(root, download=False, ...)` as labelled images.

    The split goes to the dataset's `split=` or `train=` argument when it has one.
    """
    import torchvision.datasets as tvd

    cls = getattr(tvd, name, None)
    if cls is None:
        raise ValueError(f"torchvision.datasets has no dataset {name!r}")
    params = inspect.signature(cls).parameters
    if "split" in params:
        kwargs.setdefault("split", split)
    elif "train" in params:
        kwargs.setdefault("train", split == "train")
    if "download" in params:
        kwargs["download"] = False
    dataset = cls(str(root), **kwargs)
    for attr in ("targets", "_labels", "labels", "y"):
        labels = getattr(dataset, attr, None)
        if labels is not None and len(labels) == len(dataset):
            break
    else:
        labels = [dataset[i][1] for i in range(len(dataset))]
    classes = [str(c) for c in getattr(dataset, "classes", [])]
    labels = np.asarray(labels, dtype=np.int64)
    if not classes:
        classes = [str(c) for c in range(int(labels.max()) + 1)]
    return LabelledImages(f"{name}-{split}", _DatasetImages(dataset), labels, classes)


# ---------------------------------------------------------------------------------- registry

BENCHMARKS: dict[str, Loader] = {
    "fashion-mnist": _fashion_mnist,
    "digits": _digits,
    "cifar10": _cifar,
    "cifar100": _cifar,
    "imagenet": _imagenet,
    "imagenet-v2": _imagenet_v2,
    "pets": _pets,
    "image-folder": _image_folder,
}


def limit_rows(labels: np.ndarray, limit: int, seed: int = 0) -> np.ndarray:
    """`limit` row numbers spread evenly over the classes (seeded), in ascending order."""
    order = np.random.default_rng(seed).permutation(len(labels))
    rank = np.empty(len(order), dtype=np.int64)
    for c in np.unique(labels):
        members = order[labels[order] == c]
        rank[members] = np.arange(len(members))
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order))
    picked = np.lexsort((position, rank))[:limit]
    return np.sort(picked)


def file_safe(name: str) -> str:
    """`name` with every character but letters, digits and `-_.` replaced by `_`."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def benchmark_key(
    name: str, split: str, root: Path | None, extra: Mapping, limit: int | None, seed: int
) -> str:
    """A readable, file-name-safe key of the exact benchmark images."""
    where = json.dumps([str(root) if root else None, extra], sort_keys=True, default=str)
    digest = hashlib.sha256(where.encode()).hexdigest()[:8]
    return f"{file_safe(name)}-{split}-{limit if limit else 'all'}-s{seed}-{digest}"


def load_benchmark(
    name: str,
    split: str = "test",
    root: str | Path | None = None,
    limit: int | None = None,
    *,
    seed: int = 0,
    templates: Sequence[str] | None = None,
    **options: Any,
) -> AnyBenchmark:
    """The benchmark `name`: a classification one (see `BENCHMARKS`, or
    "torchvision:<Name>") or a retrieval one (`RETRIEVAL_BENCHMARKS`).

    `limit` keeps that many images (spread evenly over the classes, for classification);
    `templates` replace the dataset's prompt templates; `options` go to the loader (e.g.
    `class_names=` for folders, `annotations=` for retrieval, dataset arguments for
    torchvision).
    """
    if limit is not None:
        require_positive_int("limit", limit)
    root = Path(root).expanduser().resolve() if root is not None else None
    key = benchmark_key(name, split, root, options, limit, seed)
    if name in RETRIEVAL_BENCHMARKS:
        return load_retrieval_benchmark(name, split, root, limit, seed, key, **options)
    if name.startswith("torchvision:"):
        if root is None:
            raise ValueError(f"{name} needs root= (datasets are never downloaded)")
        data = load_torchvision(name.split(":", 1)[1], root, split, **options)
        default = DEFAULT_TEMPLATES
    elif name in BENCHMARKS:
        data, default = BENCHMARKS[name](split, root, **options)
    else:
        known = sorted([*BENCHMARKS, *RETRIEVAL_BENCHMARKS])
        raise ValueError(f"unknown benchmark {name!r}; one of {known} or 'torchvision:<Name>'")
    if len(data) == 0:
        raise DatasetError(f"benchmark {name!r} at {root} has no {split!r} images")
    if limit is not None and limit < len(data):
        data = data.subset(limit_rows(data.labels, limit, seed))
    chosen = tuple(templates) if templates else default
    return Benchmark(name, split, data, chosen, key)
