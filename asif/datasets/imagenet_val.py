"""ImageNet's validation set as shipped: a flat folder of `ILSVRC2012_val_<n>.JPEG` files and
the devkit `ILSVRC2012_devkit_t12` (folder or `.tar.gz`), whose ground truth gives image n's
ILSVRC2012_ID and whose `meta.mat` maps that ID to a wnid.

Labels are the standard class indices (sorted wnids: 0 = n01440764), not ILSVRC2012_IDs, so
they agree with class-folder trees and with models' outputs. Class names are the wnids; readable
names are the benchmark's choice.
"""

from __future__ import annotations

import io
import re
import tarfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from asif.datasets.base import LabelledImages
from asif.encoders.images import IMAGE_SUFFIXES
from asif.errors import DatasetError

DEVKIT = "ILSVRC2012_devkit_t12"
GROUND_TRUTH = "data/ILSVRC2012_validation_ground_truth.txt"
META = "data/meta.mat"
IMAGE_FOLDERS = (".", "ILSVRC2012_img_val", "val")
"""Where, under root, the flat images may be."""
_IMAGE_STEM = re.compile(r"ILSVRC2012_val_(\d+)")


def _image_number(path: Path) -> int | None:
    match = _IMAGE_STEM.fullmatch(path.stem)
    return int(match[1]) if match and path.suffix.lower() in IMAGE_SUFFIXES else None


def val_images_folder(root: str | Path) -> Path | None:
    """The first of root, root/ILSVRC2012_img_val, root/val holding validation images directly."""
    for name in IMAGE_FOLDERS:
        folder = Path(root) / name
        if folder.is_dir() and any(_image_number(p) is not None for p in folder.iterdir()):
            return folder
    return None


def find_devkit(root: str | Path) -> Path | None:
    """The devkit folder or `.tar.gz` in `root` or next to it."""
    for folder in (Path(root), Path(root).parent):
        for name in (DEVKIT, f"{DEVKIT}.tar.gz"):
            if (folder / name).exists():
                return folder / name
    return None


def _devkit_reader(devkit: Path) -> Callable[[str], bytes]:
    """A reader of the devkit's files by relative path (`data/meta.mat`), folder or archive."""
    if devkit.is_dir():

        def read(name: str) -> bytes:
            if not (devkit / name).is_file():
                raise DatasetError(f"{devkit / name} not found: the devkit lacks {name}")
            return (devkit / name).read_bytes()

        return read
    wanted: dict[str, bytes] = {}
    try:
        with tarfile.open(devkit) as tar:
            for member in tar.getmembers():
                name = next((w for w in (META, GROUND_TRUTH) if member.name.endswith(w)), None)
                extracted = tar.extractfile(member) if name and member.isfile() else None
                if name and extracted is not None:
                    wanted[name] = extracted.read()
    except (tarfile.TarError, OSError) as e:
        raise DatasetError(f"{devkit} is not a readable devkit folder or .tar.gz: {e}") from e

    def read_member(name: str) -> bytes:
        if name not in wanted:
            raise DatasetError(f"{devkit} has no member {DEVKIT}/{name}")
        return wanted[name]

    return read_member


def _leaf_wnids(raw: bytes, source: str) -> dict[int, str]:
    """ILSVRC2012_ID -> wnid of the classes (synsets without children), as torchvision reads."""
    import scipy.io
    from scipy.io.matlab import MatReadError

    try:
        synsets = np.atleast_1d(scipy.io.loadmat(io.BytesIO(raw), squeeze_me=True)["synsets"])
        rows = zip(synsets["ILSVRC2012_ID"], synsets["WNID"], synsets["num_children"], strict=True)
        return {int(i): str(wnid) for i, wnid, children in rows if int(children) == 0}
    except (MatReadError, KeyError, ValueError, IndexError, TypeError) as e:
        raise DatasetError(
            f"{source} is not the devkit's synset table (synsets: ILSVRC2012_ID, WNID, "
            f"num_children): {e}"
        ) from e


def _ground_truth(raw: bytes, source: str, known: dict[int, int]) -> list[int]:
    """The class index of images 1, 2, ... from the ground truth's ILSVRC2012_IDs."""
    labels = []
    for number, line in enumerate(raw.decode().splitlines(), 1):
        text = line.strip()
        if not text.isdigit() or int(text) not in known:
            raise DatasetError(
                f"{source} line {number}: {line!r} is not the ILSVRC2012_ID of one of the "
                f"{len(known)} classes in {META}"
            )
        labels.append(known[int(text)])
    return labels


def load_imagenet_val(root: str | Path, devkit: str | Path | None = None) -> LabelledImages:
    """The validation images found under `root` (any subset of the 50k), as file paths.

    The devkit is `devkit`, else `root/ILSVRC2012_devkit_t12[.tar.gz]` or the same next to root.
    """
    root = Path(root)
    kit = Path(devkit) if devkit is not None else find_devkit(root)
    if kit is None:
        raise DatasetError(
            f"no ImageNet devkit: expected {DEVKIT} or {DEVKIT}.tar.gz in {root} or "
            f"{root.parent}, or pass devkit="
        )
    if not kit.exists():
        raise DatasetError(f"the ImageNet devkit {kit} does not exist")
    folder = val_images_folder(root)
    if folder is None:
        raise DatasetError(
            f"no ILSVRC2012_val_<n> images directly in {root}, {root / IMAGE_FOLDERS[1]} or "
            f"{root / IMAGE_FOLDERS[2]}"
        )
    read = _devkit_reader(kit)
    ids = _leaf_wnids(read(META), f"{kit}/{META}")
    wnids = sorted(ids.values())
    position = {wnid: label for label, wnid in enumerate(wnids)}
    index = {i: position[wnid] for i, wnid in ids.items()}
    truth = _ground_truth(read(GROUND_TRUTH), f"{kit}/{GROUND_TRUTH}", index)
    images = sorted((n, p) for p in folder.iterdir() if (n := _image_number(p)) is not None)
    beyond = [p.name for n, p in images if not 1 <= n <= len(truth)]
    if beyond:
        raise DatasetError(
            f"{len(beyond)} image(s) in {folder} are numbered beyond the {len(truth)} lines of "
            f"{kit}/{GROUND_TRUTH}, first: {beyond[0]}"
        )
    labels = np.asarray([truth[n - 1] for n, _ in images], dtype=np.int64)
    return LabelledImages("imagenet-val", [p for _, p in images], labels, wnids)
