"""Image-text retrieval test sets as one type: image files, a flat caption list, and the image
each caption describes.

Read from Karpathy's split files (COCO, Flickr30k, Flickr8k), from CLIP_benchmark's COCO and
Flickr annotations, or from a folder of images with caption files beside them. Errors name the
file and the entry; annotation files are read with a size cap, since they may come from anywhere.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from asif.encoders.base import ImageInput
from asif.encoders.images import IMAGE_SUFFIXES
from asif.errors import DatasetError

MAX_ANNOTATION_BYTES = 1 << 30
"""Size over which an annotation or caption file is refused (the largest real one, Karpathy's
dataset_coco.json, is about 150 MB)."""

COCO_FOLDERS = ("", "val2014", "train2014")
"""Where, under the root, COCO images are looked for (CLIP_benchmark unzips them in val2014/)."""

FLICKR_FOLDERS = ("", "Images", "flickr30k-images")
"""Where, under the root, Flickr images are looked for (Flickr8k's and Flickr30k's archives)."""


@dataclass(frozen=True)
class CaptionedImages:
    """`captions[j]` describes `images[caption_image[j]]`; every image has at least one caption.

    `images` are file paths, decoded on access. The readers give each image's captions
    together, in file order. `skipped` counts the images left out for want of a caption file
    (caption folders only).
    """

    name: str
    images: Sequence[ImageInput]
    captions: list[str]
    caption_image: np.ndarray
    skipped: int = 0

    def __post_init__(self) -> None:
        owner = np.asarray(self.caption_image, dtype=np.int64)
        object.__setattr__(self, "caption_image", owner)
        if owner.shape != (len(self.captions),):
            raise DatasetError(
                f"{self.name}: {len(self.captions)} captions, caption_image of shape {owner.shape}"
            )
        n = len(self.images)
        if len(owner) and (owner.min() < 0 or owner.max() >= n):
            bad = np.flatnonzero((owner < 0) | (owner >= n))
            raise DatasetError(
                f"{self.name}: caption {bad[0]} refers to image {owner[bad[0]]}, not in 0..{n - 1}"
            )
        bare = np.flatnonzero(np.bincount(owner, minlength=n) == 0)
        if len(bare):
            raise DatasetError(
                f"{self.name}: {len(bare)} image(s) without a caption, first: {bare[:5].tolist()}"
            )

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, image_rows: np.ndarray | Sequence[int]) -> CaptionedImages:
        """The images at `image_rows` (in that order) with their captions, in caption order."""
        rows = np.asarray(image_rows, dtype=np.int64).reshape(-1)
        if len(np.unique(rows)) != len(rows):
            raise ValueError(f"{self.name}: image rows repeat")
        new_index = np.full(len(self.images), -1, dtype=np.int64)
        new_index[rows] = np.arange(len(rows))
        owner = new_index[self.caption_image]
        kept = np.flatnonzero(owner >= 0)
        return replace(
            self,
            images=[self.images[i] for i in rows.tolist()],
            captions=[self.captions[j] for j in kept],
            caption_image=owner[kept],
        )

    def first(self, n: int) -> CaptionedImages:
        """The first `n` images (all if fewer) with their captions."""
        return self.subset(np.arange(min(n, len(self))))


def read_karpathy(
    annotations: str | Path, images: str | Path, split: str = "test"
) -> CaptionedImages:
    """The `split` images of Karpathy's dataset_{coco,flickr30k,flickr8k}.json, in file order.

    An image is `images/<filepath>/<filename>` (COCO's filepath is val2014 or train2014), or
    `images/<filename>`. Captions are the stripped "raw" sentences; empty ones are dropped.
    """
    path = Path(annotations)
    return _karpathy(path, _read_json(path), Path(images), split)


def read_coco_captions(annotations: str | Path, images: str | Path) -> CaptionedImages:
    """CLIP_benchmark's coco_<split>_karpathy.json (COCO captions format), as torchvision's
    CocoCaptions reads it: images in "images" order, each with its annotations in file order.

    Images are looked for in `images/`, `images/val2014/` and `images/train2014/`.
    """
    path = Path(annotations)
    return _coco(path, _read_json(path), Path(images))


def read_flickr_captions(annotations: str | Path, images: str | Path) -> CaptionedImages:
    """CLIP_benchmark's flickr{30k,8k}_<split>_karpathy.txt: a header line, then
    `name.jpg,caption` lines (split at the first ".jpg,": captions hold commas).

    Images come in order of first appearance, looked for in `images/`, `images/Images/` and
    `images/flickr30k-images/`.
    """
    path = Path(annotations)
    index: dict[str, int] = {}
    names: list[tuple[str, ...]] = []
    labels: list[str] = []
    captions: list[str] = []
    owner: list[int] = []
    for number, line in _lines(path):
        if number == 1 or not line.strip():
            continue
        stem, sep, caption = line.partition(".jpg,")
        if not sep:
            raise DatasetError(f"{path}: line {number} is not 'name.jpg,caption'")
        file_name = stem.strip() + ".jpg"
        if file_name not in index:
            index[file_name] = len(names)
            names.append(_candidates(file_name, FLICKR_FOLDERS))
            labels.append(f"line {number} ({file_name})")
        _add(captions, owner, index[file_name], caption)
    return _assemble(path.stem, path, Path(images), names, captions, owner, labels)


def read_caption_folder(root: str | Path) -> CaptionedImages:
    """The images under `root` (recursively, sorted by path) that have a same-stem .txt beside
    them, one caption per non-empty line; images without one are skipped and counted."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"image folder {root} does not exist or is not a folder")
    images: list[Path] = []
    captions: list[str] = []
    owner: list[int] = []
    skipped = 0
    for image in sorted(
        p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
    ):
        text = image.with_suffix(".txt")
        if not text.is_file():
            skipped += 1
            continue
        count = len(captions)
        for _, line in _lines(text):
            _add(captions, owner, len(images), line)
        if len(captions) == count:
            raise DatasetError(f"{text}: no non-empty caption line")
        images.append(image)
    if not images:
        raise DatasetError(
            f"no captioned images under {root}: none of its {skipped} image file(s) "
            "has a same-stem .txt caption file beside it"
        )
    return CaptionedImages(root.name, images, captions, np.asarray(owner, np.int64), skipped)


def load_captioned(
    root: str | Path, split: str = "test", annotations: str | Path | None = None
) -> CaptionedImages:
    """The retrieval test set at `root`, whatever its layout.

    `annotations` defaults to the first of `annotation_files(split)` found in `root`, else
    `root` is read as a caption-file folder. The format is told from the file's content: a
    .json file or one starting with "{" is Karpathy's split file (`split` picks its images) or
    COCO captions, anything else Flickr text (COCO's and Flickr's files hold one split each).
    Images are looked up under `root`.
    """
    root = Path(root)
    if annotations is None:
        found = [root / f for f in annotation_files(split) if (root / f).is_file()]
        if not found:
            try:
                return read_caption_folder(root)
            except DatasetError as exc:
                looked_for = ", ".join(annotation_files(split))
                raise DatasetError(f"{root}: no annotation file ({looked_for}); {exc}") from exc
        annotations = found[0]
    path = Path(annotations)
    if path.suffix.lower() != ".json" and not _starts_with_brace(path):
        return read_flickr_captions(path, root)
    doc = _read_json(path)
    if "annotations" in doc:
        return _coco(path, doc, root)
    entries = doc.get("images")
    if isinstance(entries, list) and entries and isinstance(entries[0], dict):
        if "sentences" in entries[0]:
            return _karpathy(path, doc, root, split)
    raise DatasetError(
        f"{path}: neither Karpathy's split file (images[].sentences) nor COCO captions "
        "(annotations)"
    )


def annotation_files(split: str = "test") -> tuple[str, ...]:
    """The annotation file names `load_captioned` looks for in its root, in order."""
    return (
        "dataset_coco.json",
        "dataset_flickr30k.json",
        "dataset_flickr8k.json",
        f"coco_{split}_karpathy.json",
        f"flickr30k_{split}_karpathy.txt",
        f"flickr8k_{split}_karpathy.txt",
    )


def _karpathy(path: Path, doc: dict[str, Any], root: Path, split: str) -> CaptionedImages:
    splits: set[str] = set()
    names: list[tuple[str, ...]] = []
    labels: list[str] = []
    captions: list[str] = []
    owner: list[int] = []
    for i, entry in enumerate(_field(doc, "images", path, "", list)):
        at = f"images[{i}]"
        entry_split = _field(entry, "split", path, at)
        splits.add(entry_split)
        if entry_split != split:
            continue
        filename = _field(entry, "filename", path, at)
        folder = _field(entry, "filepath", path, at) if "filepath" in entry else ""
        names.append(_candidates(filename, (folder, "") if folder else ("",)))
        labels.append(f"{at} ({filename})")
        for j, sentence in enumerate(_field(entry, "sentences", path, at, list)):
            raw = _field(sentence, "raw", path, f"{at}.sentences[{j}]")
            _add(captions, owner, len(names) - 1, raw)
    if not names:
        raise DatasetError(f"{path}: no images in split {split!r}; splits: {sorted(splits)}")
    name = f"{doc.get('dataset', path.stem)}-{split}"
    return _assemble(name, path, root, names, captions, owner, labels)


def _coco(path: Path, doc: dict[str, Any], root: Path) -> CaptionedImages:
    index: dict[int | str, int] = {}
    names: list[tuple[str, ...]] = []
    labels: list[str] = []
    for i, entry in enumerate(_field(doc, "images", path, "", list)):
        at = f"images[{i}]"
        image_id = _field(entry, "id", path, at, (int, str))
        if image_id in index:
            raise DatasetError(f"{path}: {at} repeats id {image_id!r}")
        file_name = _field(entry, "file_name", path, at)
        index[image_id] = len(names)
        names.append(_candidates(file_name, COCO_FOLDERS))
        labels.append(f"{at} ({file_name})")
    captions: list[str] = []
    owner: list[int] = []
    for j, annotation in enumerate(_field(doc, "annotations", path, "", list)):
        at = f"annotations[{j}]"
        image_id = _field(annotation, "image_id", path, at, (int, str))
        if image_id not in index:
            raise DatasetError(f"{path}: {at} refers to image_id {image_id!r}, not in images")
        _add(captions, owner, index[image_id], _field(annotation, "caption", path, at))
    return _assemble(path.stem, path, root, names, captions, owner, labels)


def _candidates(name: str, folders: Sequence[str]) -> tuple[str, ...]:
    """The paths, relative to the images root, where image `name` may be."""
    return tuple(str(PurePosixPath(folder, name)) for folder in folders)


def _add(captions: list[str], owner: list[int], image: int, text: str) -> None:
    """Append `text`, stripped, as a caption of `image`, unless it is empty."""
    text = text.strip()
    if text:
        captions.append(text)
        owner.append(image)


def _assemble(
    name: str,
    source: Path,
    root: Path,
    names: Sequence[tuple[str, ...]],
    captions: list[str],
    owner: list[int],
    labels: Sequence[str],
) -> CaptionedImages:
    """The set, once every image has a caption and a file, its captions grouped per image in
    file order (as CLIP_benchmark groups them). `names[i]` are the paths, relative to `root`,
    where image i may be (the first one found is taken)."""
    image_of = np.asarray(owner, dtype=np.int64)
    bare = np.flatnonzero(np.bincount(image_of, minlength=len(names)) == 0)
    if len(bare):
        more = f" (and {len(bare) - 1} more)" if len(bare) > 1 else ""
        raise DatasetError(f"{source}: {labels[bare[0]]} has no non-empty caption{more}")
    images = _locate(source, root, names)
    order = np.argsort(image_of, kind="stable")
    grouped = [captions[j] for j in order.tolist()]
    return CaptionedImages(name, images, grouped, image_of[order])


def _locate(source: Path, root: Path, names: Iterable[tuple[str, ...]]) -> list[Path]:
    """The first existing `root/<candidate>` of each image."""
    found: list[Path] = []
    missing: list[str] = []
    for candidates in names:
        for c in candidates:
            if PurePosixPath(c).is_absolute() or ".." in PurePosixPath(c).parts:
                raise DatasetError(f"{source}: image name {c!r} leaves the image folder")
        path = next((root / c for c in candidates if (root / c).is_file()), None)
        if path is None:
            missing.append(candidates[0])
        else:
            found.append(path)
    if missing:
        raise DatasetError(
            f"{source}: {len(missing)} image(s) not found under {root}, first: {missing[:5]}"
        )
    return found


def _too_large(path: Path) -> DatasetError:
    return DatasetError(f"{path}: over {MAX_ANNOTATION_BYTES} bytes, refused")


def _unreadable(path: Path, exc: OSError) -> DatasetError:
    return DatasetError(f"{path}: cannot read: {exc.strerror or exc}")


def _read_json(path: Path) -> dict[str, Any]:
    """The JSON object in `path`, read whole under the size cap."""
    try:
        if path.stat().st_size > MAX_ANNOTATION_BYTES:
            raise _too_large(path)
        with path.open("rb") as f:
            data = f.read(MAX_ANNOTATION_BYTES + 1)  # also bounds files that never end
    except OSError as exc:
        raise _unreadable(path, exc) from exc
    if len(data) > MAX_ANNOTATION_BYTES:
        raise _too_large(path)
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    except json.JSONDecodeError as exc:
        raise DatasetError(
            f"{path}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from exc
    if not isinstance(doc, dict):
        raise DatasetError(f"{path}: a JSON {type(doc).__name__}, expected an object")
    return doc


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based number, text) of each line of `path`, read one at a time under the size cap."""
    budget = MAX_ANNOTATION_BYTES
    try:
        if path.stat().st_size > budget:
            raise _too_large(path)
        with path.open("rb") as f:
            number = 0
            while line := f.readline(budget + 1):
                budget -= len(line)
                if budget < 0:
                    raise _too_large(path)
                number += 1
                try:
                    yield number, line.decode("utf-8-sig" if number == 1 else "utf-8")
                except UnicodeDecodeError as exc:
                    raise DatasetError(f"{path}: line {number} is not UTF-8 text") from exc
    except OSError as exc:
        raise _unreadable(path, exc) from exc


def _starts_with_brace(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{")
    except OSError as exc:
        raise _unreadable(path, exc) from exc


_Kind = type | tuple[type, ...]


def _field(entry: object, key: str, path: Path, at: str, kind: _Kind = str) -> Any:
    """`entry[key]` if `entry` is an object holding a `kind` there, else DatasetError naming
    the file and the entry `at` ("" for the top level)."""
    if not isinstance(entry, dict) or key not in entry:
        raise DatasetError(f"{path}: {at or 'top level'} has no {key!r}")
    value = entry[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        kinds = kind if isinstance(kind, tuple) else (kind,)
        expected = " or ".join(k.__name__ for k in kinds)
        where = f"{at}.{key}" if at else key
        raise DatasetError(f"{path}: {where} is a {type(value).__name__}, expected {expected}")
    return value
