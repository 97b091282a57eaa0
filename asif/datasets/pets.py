"""Oxford-IIIT Pets as downloaded: `images/<stem>.jpg`, listed with their breed in
`annotations/test.txt` and `annotations/trainval.txt` (`Abyssinian_100 1 1 1`: image stem,
class id 1..37, species, breed id).

Breeds are named from their images' stems as torchvision's `OxfordIIITPet` does, so names and
class order match what other tools report.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from asif.datasets.base import LabelledImages
from asif.errors import DatasetError

SPLIT_FILES = {"test": "test.txt", "train": "trainval.txt", "trainval": "trainval.txt"}


def breed_name(stem: str) -> str:
    """ "american_pit_bull_terrier_12" -> "American Pit Bull Terrier" (torchvision's naming)."""
    return " ".join(part.title() for part in stem.rsplit("_", 1)[0].split("_"))


def pets_root(root: str | Path) -> Path:
    """The folder holding `images/` and `annotations/`: `root` or `root/oxford-iiit-pet`."""
    root = Path(root)
    nested = root / "oxford-iiit-pet"
    if not (root / "annotations").is_dir() and (nested / "annotations").is_dir():
        return nested
    return root


def _read_listing(listing: Path) -> tuple[list[str], list[int]]:
    """(image stems, class ids) of an annotation file, checked line by line."""
    stems: list[str] = []
    ids: list[int] = []
    for number, line in enumerate(listing.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) != 4 or not all(f.isdigit() for f in fields[1:]) or int(fields[1]) < 1:
            raise DatasetError(
                f"{listing} line {number}: {line!r} is not '<image> <class id 1..37> "
                "<species> <breed id>'"
            )
        stems.append(fields[0])
        ids.append(int(fields[1]))
    if not stems:
        raise DatasetError(f"{listing} lists no images")
    return stems, ids


def load_pets(root: str | Path, split: str = "test") -> LabelledImages:
    """The `split` ("test", or "train"/"trainval") images, as file paths, labelled by breed.

    Labels index the breeds present, in class id order.
    """
    if split not in SPLIT_FILES:
        raise ValueError(f"Pets split must be one of {sorted(SPLIT_FILES)}, got {split!r}")
    folder = pets_root(root)
    listing = folder / "annotations" / SPLIT_FILES[split]
    if not listing.is_file():
        raise DatasetError(
            f"{listing} not found: expected annotations/test.txt and annotations/trainval.txt "
            f"in {Path(root)} or {Path(root) / 'oxford-iiit-pet'}"
        )
    stems, ids = _read_listing(listing)
    paths = [folder / "images" / f"{stem}.jpg" for stem in stems]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise DatasetError(
            f"{len(missing)} image(s) listed in {listing} are missing from "
            f"{folder / 'images'}, first: {missing[0]}"
        )
    names: dict[int, str] = {}
    for stem, class_id in zip(stems, ids, strict=True):
        names.setdefault(class_id, breed_name(stem))
    classes = sorted(names)
    labels = np.searchsorted(classes, ids).astype(np.int64)
    return LabelledImages(f"pets-{split}", paths, labels, [names[c] for c in classes])
