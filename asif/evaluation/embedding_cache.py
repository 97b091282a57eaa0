"""On-disk cache of benchmark image embeddings (per image encoder) and prompt embeddings
(per text encoder), so re-evaluating after an anchor change costs only the ASIF step.

Layout under the cache root::

    images/<encoder>/<benchmark key>.npy   (n, d) float32, + .json {encoder, key, n, fingerprint}
    images/<encoder>/<benchmark key>.parts/ the chunks of an embedding under way
    texts/<encoder>/<sha256 of the texts>.npy

Files are written to a temporary name and renamed, so concurrent runs never read half a file.
Images are embedded `EMBED_CHUNK` at a time and each chunk is kept until the whole set is
done, so an interrupted run over 50,000 ImageNet images resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from asif.encoders.base import ImageEncoder, TextEncoder
from asif.evaluation.benchmarks import AnyBenchmark, file_safe
from asif.files import atomic_file, atomic_write_text

ENV_CACHE_DIR = "ASIF_EVAL_CACHE"
EMBED_CHUNK = 2048


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


class EmbeddingCache:
    """Embeddings computed once and reused; `stats` counts hits and misses per kind."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.stats: Counter[str] = Counter()

    def image_path(self, benchmark: AnyBenchmark, encoder_name: str) -> Path:
        return self.root / "images" / file_safe(encoder_name) / f"{benchmark.key}.npy"

    def text_path(self, texts: Sequence[str], encoder_name: str) -> Path:
        digest = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:32]
        return self.root / "texts" / file_safe(encoder_name) / f"{digest}.npy"

    def image_embeddings(
        self,
        benchmark: AnyBenchmark,
        encoder_name: str,
        encoder: Callable[[], ImageEncoder],
        batch_size: int = 32,
        progress: bool = False,
    ) -> np.ndarray:
        """The benchmark's image embeddings, from the cache or embedded chunk by chunk (the
        chunks already embedded by an interrupted run are reused) and stored.

        `encoder` is called (to load the model) only on a miss.
        """
        path = self.image_path(benchmark, encoder_name)
        fingerprint = benchmark.fingerprint
        if path.is_file():
            meta = json.loads(path.with_suffix(".json").read_text())
            if meta.get("fingerprint") == fingerprint and meta.get("n") == len(benchmark):
                self.stats["image_hits"] += 1
                return np.load(path)
        self.stats["image_misses"] += 1
        parts_dir = path.with_suffix(".parts")
        images, n, parts = benchmark.data.images, len(benchmark), []
        with tqdm(total=n, desc=f"embed {benchmark.name}", disable=not progress) as bar:
            for start in range(0, n, EMBED_CHUNK):
                stop = min(start + EMBED_CHUNK, n)
                part = parts_dir / f"{start:09d}-{stop:09d}-{fingerprint[:16]}.npy"
                if part.is_file():
                    parts.append(np.load(part))
                else:
                    x = encoder().encode(list(images[start:stop]), batch_size=batch_size)
                    parts.append(np.asarray(x, np.float32))
                    _save_atomic(part, parts[-1])
                bar.update(stop - start)
        x = np.concatenate(parts)
        meta = {"encoder": encoder_name, "key": benchmark.key, "n": n}
        _save_atomic(path, x, {**meta, "fingerprint": fingerprint})
        shutil.rmtree(parts_dir, ignore_errors=True)
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
