"""On-disk cache of benchmark image embeddings (per image encoder) and prompt embeddings
(per text encoder), so re-evaluating after an anchor change costs only the ASIF step.

Layout under the cache root::

    images/<encoder>/<benchmark key>.npy   (n, d) float32, + .json {encoder, key, n, labels_sha}
    texts/<encoder>/<sha256 of the texts>.npy

Files are written to a temporary name and renamed, so concurrent runs never read half a file.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from asif.encoders.base import ImageEncoder, TextEncoder
from asif.evaluation.benchmarks import Benchmark, file_safe
from asif.files import atomic_file, atomic_write_text

ENV_CACHE_DIR = "ASIF_EVAL_CACHE"


def default_cache_dir(table_uri: str | None = None) -> Path:
    """$ASIF_EVAL_CACHE, else `<table uri>/evaluation-cache` for a local database, else
    ~/.cache/asif/evaluation."""
    if os.environ.get(ENV_CACHE_DIR):
        return Path(os.environ[ENV_CACHE_DIR])
    if table_uri and "://" not in table_uri:
        return Path(table_uri) / "evaluation-cache"
    return Path.home() / ".cache" / "asif" / "evaluation"


def _save_atomic(path: Path, array: np.ndarray, meta: dict | None = None) -> None:
    """Write `meta` (the .json beside it) first: readers look for the .npy, then read both."""
    if meta is not None:
        atomic_write_text(path.with_suffix(".json"), json.dumps(meta, indent=1))
    with atomic_file(path) as f:
        np.save(f, array)


def _labels_sha(labels: np.ndarray) -> str:
    return hashlib.sha256(np.asarray(labels, dtype=np.int64).tobytes()).hexdigest()


class EmbeddingCache:
    """Embeddings computed once and reused; `stats` counts hits and misses per kind."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.stats: Counter[str] = Counter()

    def image_path(self, benchmark: Benchmark, encoder_name: str) -> Path:
        return self.root / "images" / file_safe(encoder_name) / f"{benchmark.key}.npy"

    def text_path(self, texts: Sequence[str], encoder_name: str) -> Path:
        digest = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:32]
        return self.root / "texts" / file_safe(encoder_name) / f"{digest}.npy"

    def image_embeddings(
        self,
        benchmark: Benchmark,
        encoder_name: str,
        encoder: Callable[[], ImageEncoder],
        batch_size: int = 32,
    ) -> np.ndarray:
        """The benchmark's image embeddings, from the cache or embedded and stored.

        `encoder` is called (to load the model) only on a miss.
        """
        path = self.image_path(benchmark, encoder_name)
        labels_sha = _labels_sha(benchmark.labels)
        if path.is_file():
            meta = json.loads(path.with_suffix(".json").read_text())
            if meta.get("labels_sha") == labels_sha and meta.get("n") == len(benchmark):
                self.stats["image_hits"] += 1
                return np.load(path)
        self.stats["image_misses"] += 1
        x = encoder().encode(list(benchmark.data.images), batch_size=batch_size)
        meta = {"encoder": encoder_name, "key": benchmark.key, "n": len(benchmark)}
        _save_atomic(path, np.asarray(x, np.float32), {**meta, "labels_sha": labels_sha})
        return x

    def text_embeddings(
        self, texts: Sequence[str], encoder_name: str, encoder: Callable[[], TextEncoder]
    ) -> np.ndarray:
        """Embeddings of `texts` (e.g. every class prompt), from the cache or embedded."""
        path = self.text_path(texts, encoder_name)
        if path.is_file():
            self.stats["text_hits"] += 1
            return np.load(path)
        self.stats["text_misses"] += 1
        x = np.asarray(encoder().encode(list(texts)), np.float32)
        _save_atomic(path, x)
        return x
