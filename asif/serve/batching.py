"""Dynamic micro-batching: images that arrive together are embedded and related together.

One encoder call on B images costs much less than B calls of one (on a GPU, about as much as
one), and so does one scan of the anchors for B queries. So request threads hand their
decoded image to an `ImageBatcher` and wait. Its worker thread takes what has arrived
within `batch_wait` seconds of the first image (at most `max_batch`), encodes it in one
call per encoder, takes r(x) in one scan per model, and hands each request its row. The
worker also serialises encoder calls, which on a CPU only contend when run side by side.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from PIL import Image

from asif.encoders.base import ImageEncoder
from asif.errors import SettingsError, require_positive_int
from asif.model import AsifModel
from asif.model.relative import SparseRelative

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class BatchSettings:
    """`max_batch` images per encoder call (1: no batching, each request encodes its own);
    `batch_wait` seconds the first image of a batch waits for others."""

    max_batch: int = 16
    batch_wait: float = 0.002

    def __post_init__(self) -> None:
        require_positive_int("max_batch", self.max_batch)
        if not 0.0 <= self.batch_wait <= 1.0:  # (False for NaN)
            raise SettingsError(f"batch_wait must be 0 to 1 s, got {self.batch_wait!r}")


@dataclass(frozen=True)
class Embedded:
    """One image's `embedding` (1, d) and its r(x) over the model's anchors (one row)."""

    embedding: np.ndarray
    relative: SparseRelative


@dataclass(frozen=True)
class _Job:
    model: AsifModel
    encoder: ImageEncoder
    image: Image.Image
    result: Future[Embedded]


class ImageBatcher:
    """Embeds and relates images for many request threads, batched per `BatchSettings`."""

    def __init__(self, settings: BatchSettings = BatchSettings()) -> None:
        self.settings = settings
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._worker: threading.Thread | None = None
        self._lock = threading.Lock()

    def embed(self, model: AsifModel, image: Image.Image) -> Embedded:
        """`image` embedded by `model`, in a batch with the others that are waiting."""
        encoder = model.image_encoder
        if encoder is None or self.settings.max_batch == 1:
            embedding = model.embed_images([image])  # (raises the model's error if None)
            return Embedded(embedding, model.image_relative(embedding))
        job = _Job(model, encoder, image, Future())
        self._start()
        self._jobs.put(job)
        return job.result.result()

    def close(self) -> None:
        """Stop the worker after the images already handed in."""
        with self._lock:
            worker, self._worker = self._worker, None
        if worker is not None:
            self._jobs.put(None)
            worker.join()

    def _start(self) -> None:
        with self._lock:
            if self._worker is None:
                self._worker = threading.Thread(
                    target=self._run, name="asif-image-batcher", daemon=True
                )
                self._worker.start()

    def _run(self) -> None:
        while (first := self._jobs.get()) is not None:
            batch, stop = self._collect(first)
            encoded: list[tuple[_Job, np.ndarray]] = []
            for encoder in _distinct(j.encoder for j in batch):
                encoded += _encode(encoder, [j for j in batch if j.encoder is encoder])
            for model in _distinct(j.model for j, _ in encoded):
                _relate(model, [(j, e) for j, e in encoded if j.model is model])
            if stop:
                return

    def _collect(self, first: _Job) -> tuple[list[_Job], bool]:
        """`first` and the jobs that arrive within the wait, up to `max_batch`; and whether
        the stop signal came meanwhile."""
        batch = [first]
        deadline = time.monotonic() + self.settings.batch_wait
        while len(batch) < self.settings.max_batch:
            try:
                job = self._jobs.get(timeout=max(deadline - time.monotonic(), 0.0))
            except queue.Empty:
                break
            if job is None:
                return batch, True
            batch.append(job)
        return batch, False


def _encode(encoder: ImageEncoder, jobs: list[_Job]) -> list[tuple[_Job, np.ndarray]]:
    """The jobs with their embeddings, from one encoder call; if that fails, one by one,
    so that only the image at fault gets the error (and is left out)."""
    try:
        rows = encoder.encode([j.image for j in jobs], batch_size=len(jobs))
    except Exception as exc:
        if len(jobs) == 1:
            jobs[0].result.set_exception(exc)
            return []
        log.warning("a batch of %d images failed to encode; encoding them one by one", len(jobs))
        return [done for job in jobs for done in _encode(encoder, [job])]
    return [(job, rows[i : i + 1]) for i, job in enumerate(jobs)]


def _relate(model: AsifModel, encoded: list[tuple[_Job, np.ndarray]]) -> None:
    """r(x) of the embeddings in one scan of `model`'s anchors; each job gets its row."""
    try:
        relative = model.image_relative(np.concatenate([e for _, e in encoded]))
    except Exception as exc:
        for job, _ in encoded:
            job.result.set_exception(exc)
        return
    for i, (job, embedding) in enumerate(encoded):
        job.result.set_result(Embedded(embedding, relative[i]))


def _distinct(items: Iterable[T]) -> list[T]:
    """`items` without repeats of the same object, in order."""
    return list({id(x): x for x in items}.values())
