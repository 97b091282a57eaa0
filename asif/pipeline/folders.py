"""Turn a local folder of captioned images into the same shards `download_pairs` writes.

Each image file pairs with the same-stem `.txt` file beside it (its caption). The pairs go
through img2dataset with `file://` urls, so resizing, shard layout, stats and resume are those
of a download and the embed step has a single input kind.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow as pa

from asif.encoders.images import IMAGE_SUFFIXES
from asif.pipeline.download import DownloadOptions, DownloadStats, download_table


def folder_pairs(folder: str | Path) -> tuple[pa.Table, int]:
    """The (file:// url, caption) pairs under `folder` (recursively), and the uncaptioned count.

    An image whose `.txt` is missing or blank has no pair and is counted.
    """
    root = Path(folder)
    if not root.is_dir():
        raise NotADirectoryError(f"image folder {root} does not exist or is not a folder")
    urls, captions, uncaptioned = [], [], 0
    for image in sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        text = image.with_suffix(".txt")
        caption = text.read_text(encoding="utf-8").strip() if text.is_file() else ""
        if not caption:
            uncaptioned += 1
            continue
        urls.append(image.resolve().as_uri())
        captions.append(caption)
    table = pa.table(
        {"url": pa.array(urls, pa.string()), "caption": pa.array(captions, pa.string())}
    )
    return table, uncaptioned


def pairs_from_folder(
    folder: str | Path,
    output_dir: str | Path,
    options: DownloadOptions = DownloadOptions(),
    *,
    resume: bool = True,
) -> DownloadStats:
    """Write the folder's captioned images as shards of `output_dir`.

    Images without a caption count as failures ("missing caption"), undecodable files as
    img2dataset's "Image decoding error"; neither stops the run.
    """
    pairs, uncaptioned = folder_pairs(folder)
    skipped = Counter({"missing caption": uncaptioned})
    return download_table(pairs, output_dir, options, resume=resume, skipped=skipped)
