"""CLIP_benchmark's metrics, computed as it does, so ASIF's numbers sit beside open_clip's.

Classification (`clip_benchmark/metrics/zeroshot_classification.py`): ``acc1``, ``acc5``
(NaN with fewer than 5 classes) and ``mean_per_class_recall`` (scikit-learn's balanced
accuracy: the mean recall over the classes that have test images). Retrieval
(`zeroshot_retrieval.py`): ``image_retrieval_recall@k``, the share of captions whose image is
among the k best images for it, and ``text_retrieval_recall@k``, the share of images with at
least one of their captions among the k best captions. Ties rank the lower index first.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

CLASSIFICATION = "zeroshot_classification"
RETRIEVAL = "zeroshot_retrieval"
"""The tasks, as CLIP_benchmark names them (the `task` of results and evaluations rows)."""
RECALL_KS = (1, 5, 10)


def classification_metrics(top: np.ndarray, targets: np.ndarray, n_classes: int) -> dict:
    """`acc1`, `acc5`, `mean_per_class_recall` from each image's classes ranked best first
    (`top`: (n, >= min(5, n_classes)) class ids) and its true class."""
    targets = np.asarray(targets)
    hit = top == targets[:, None]
    predicted = top[:, 0]
    recalls = [np.mean(predicted[targets == c] == c) for c in np.unique(targets)]
    return {
        "acc1": float(np.mean(hit[:, 0])),
        "acc5": float(np.mean(hit[:, :5].any(axis=1))) if n_classes >= 5 else float("nan"),
        "mean_per_class_recall": float(np.mean(recalls)),
    }


def ranks(scores: np.ndarray, positives: np.ndarray) -> np.ndarray:
    """The 0-based rank of each row's `positives[i]` among its `scores` row, best first, ties
    to the lower index: how many entries score higher, or as high at a lower index."""
    rows = np.arange(len(scores))
    own = scores[rows, positives][:, None]
    columns = np.arange(scores.shape[1])[None, :]
    ahead = (scores > own) | ((scores == own) & (columns < positives[:, None]))
    return ahead.sum(axis=1)


def best_ranks(scores: np.ndarray, rows: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """For each row (an image: `rows[i]` is its number), the best rank among the columns it
    owns (its captions: `owner[j]` owns column j); `scores` holds every column."""
    own = np.where(owner[None, :] == rows[:, None], scores, -np.inf)
    return ranks(scores, own.argmax(axis=1))  # the first of the best: the one ranked first


def recall_at(ranked: np.ndarray, ks: Sequence[int] = RECALL_KS) -> dict[int, float]:
    """The share of ranks below each k."""
    return {k: float(np.mean(ranked < k)) for k in ks}
