"""ASIF's answers on a benchmark, computed batch by batch by a `BatchRunner`: memory holds
one batch's relative representations and scores at a time, never the anchors' width.

- `classify`: each image's 5 best classes and best score, for one or more classifiers
  (the relative representations of a batch are made once for all of them).
- `retrieval_ranks`: for each caption, the rank of its image among all images; for each
  image, the best rank of its captions among all captions (ties: lower index first). The
  gallery side is kept as sparse relative representations (n x k), never dense over anchors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from asif.evaluation.batches import DEFAULT_BATCH, BatchRunner, Columns
from asif.evaluation.metrics import best_ranks, ranks
from asif.model import AsifModel
from asif.model.relative import SparseRelative
from asif.model.zero_shot import ZeroShotClassifier
from asif.scan.base import Modality

TOP = 5
"""Classes kept per image: enough for acc5."""


@dataclass(frozen=True)
class Answers:
    """Each image's `top` classes, best first ((n, min(TOP, classes)) ids), and best score."""

    top: np.ndarray
    best: np.ndarray

    @property
    def predicted(self) -> np.ndarray:
        return self.top[:, 0]


@dataclass(frozen=True)
class _Classifying:
    model: AsifModel
    classifiers: tuple[ZeroShotClassifier, ...]
    images: np.ndarray


def _classify_batch(shared: _Classifying, start: int, stop: int) -> Columns:
    relative = shared.model.image_relative(shared.images[start:stop])
    out: Columns = {}
    for i, classifier in enumerate(shared.classifiers):
        scores = classifier.scores(relative)
        out[f"top{i}"] = np.argsort(-scores, axis=1, kind="stable")[:, :TOP]
        out[f"best{i}"] = scores.max(axis=1)
    return out


def classify(
    model: AsifModel,
    classifiers: Sequence[ZeroShotClassifier],
    image_embeddings: np.ndarray,
    runner: BatchRunner,
    batch_size: int = DEFAULT_BATCH,
) -> list[Answers]:
    """Each classifier's answers for every image, one batch of images at a time."""
    shared = _Classifying(model, tuple(classifiers), image_embeddings)
    columns = runner.map(_classify_batch, shared, len(image_embeddings), batch_size, "classify")
    return [Answers(columns[f"top{i}"], columns[f"best{i}"]) for i in range(len(classifiers))]


@dataclass(frozen=True)
class _Relating:
    model: AsifModel
    embeddings: np.ndarray
    modality: Modality


def _relative_batch(shared: _Relating, start: int, stop: int) -> Columns:
    r = shared.model.relative(shared.embeddings[start:stop], shared.modality)
    return {"indices": r.indices, "values": r.values}


def relative_rows(
    model: AsifModel,
    embeddings: np.ndarray,
    modality: Modality,
    runner: BatchRunner,
    batch_size: int = DEFAULT_BATCH,
) -> SparseRelative:
    """r(x) of every row, batch by batch."""
    columns = runner.map(
        _relative_batch, _Relating(model, embeddings, modality), len(embeddings), batch_size
    )
    return SparseRelative(columns["indices"], columns["values"], model.scan.n_rows)


@dataclass(frozen=True)
class _Ranking:
    queries: SparseRelative
    gallery: sp.csr_matrix  # (anchor rows, gallery items): the gallery's r(y) as columns
    caption_image: np.ndarray
    captions_ask: bool  # the queries are the captions (else the images)


def _rank_batch(shared: _Ranking, start: int, stop: int) -> Columns:
    scores = (shared.queries[start:stop].to_csr() @ shared.gallery).toarray()
    if shared.captions_ask:  # where each caption's image ranks among the images
        return {"rank": ranks(scores, shared.caption_image[start:stop])}
    return {"rank": best_ranks(scores, np.arange(start, stop), shared.caption_image)}


def retrieval_ranks(
    model: AsifModel,
    image_embeddings: np.ndarray,
    text_embeddings: np.ndarray,
    caption_image: np.ndarray,
    runner: BatchRunner,
    batch_size: int = DEFAULT_BATCH,
) -> tuple[np.ndarray, np.ndarray]:
    """(rank of each caption's image among the images, best rank of each image's captions
    among the captions), both 0-based."""
    images = relative_rows(model, image_embeddings, "image", runner, batch_size)
    texts = relative_rows(model, text_embeddings, "text", runner, batch_size)
    ranked = [
        runner.map(
            _rank_batch,
            _Ranking(queries, gallery.to_csr().T.tocsr(), caption_image, captions_ask),
            len(queries),
            batch_size,
            desc,
        )["rank"]
        for queries, gallery, captions_ask, desc in (
            (texts, images, True, "rank images"),
            (images, texts, False, "rank captions"),
        )
    ]
    return ranked[0], ranked[1]
