"""Image-text retrieval benchmarks: COCO and Flickr30k test splits (Karpathy's split file or
CLIP_benchmark's annotations, beside the images) and any folder of images with caption files.

A `RetrievalBenchmark` is a `CaptionedImages` set plus a key naming the exact images, as
`Benchmark` is for classification; both go through `load_benchmark`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from asif.datasets.captioned import CaptionedImages, load_captioned
from asif.evaluation.metrics import RETRIEVAL

RETRIEVAL_BENCHMARKS = ("coco", "flickr30k", "flickr8k", "captioned-folder")


@dataclass(frozen=True)
class RetrievalBenchmark:
    """Images with their captions; `key` names the exact images (as `Benchmark.key`)."""

    name: str
    split: str
    data: CaptionedImages
    key: str
    task: ClassVar[str] = RETRIEVAL

    @property
    def captions(self) -> list[str]:
        return self.data.captions

    @property
    def caption_image(self) -> np.ndarray:
        return self.data.caption_image

    @property
    def fingerprint(self) -> str:
        """A hash of the captions and their images: a changed annotation file is new data."""
        digest = hashlib.sha256(np.asarray(self.caption_image, dtype=np.int64).tobytes())
        digest.update(json.dumps(self.captions).encode())
        return digest.hexdigest()

    def __len__(self) -> int:
        return len(self.data)


def load_retrieval_benchmark(
    name: str,
    split: str,
    root: Path | None,
    limit: int | None,
    seed: int,
    key: str,
    annotations: str | Path | None = None,
    **options: Any,
) -> RetrievalBenchmark:
    """The retrieval set at `root` (`annotations`: the caption file, found in `root` if not
    given), `limit` images drawn at random (seeded) with all their captions."""
    if root is None:
        raise ValueError(f"the retrieval benchmark {name!r} needs root= (its images folder)")
    if options:
        raise ValueError(f"the retrieval benchmark {name!r} takes no options {sorted(options)}")
    data = load_captioned(root, split, annotations)
    if limit is not None and limit < len(data):
        rows = np.random.default_rng(seed).choice(len(data), limit, replace=False)
        data = data.subset(np.sort(rows))
    return RetrievalBenchmark(name, split, data, key)
