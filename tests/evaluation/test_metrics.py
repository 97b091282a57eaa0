"""CLIP_benchmark's metrics against brute force: scikit-learn for classification, full stable
sorts for retrieval ranks (scores drawn from a few values, so ties are common)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.metrics import balanced_accuracy_score

from asif.evaluation.metrics import best_ranks, classification_metrics, ranks, recall_at


def _top(scores: np.ndarray) -> np.ndarray:
    return np.argsort(-scores, axis=1, kind="stable")[:, :5]


@st.composite
def scored(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(1, 30))
    classes = draw(st.integers(2, 9))
    scores = draw(arrays(np.float64, (n, classes), elements=st.sampled_from([0.0, 0.5, 1.0])))
    targets = draw(arrays(np.int64, n, elements=st.integers(0, classes - 1)))
    return scores, targets


@given(scored())
@settings(max_examples=200, deadline=None)
@pytest.mark.filterwarnings("ignore::UserWarning")  # sklearn on classes missing from a draw
def test_classification_metrics_as_sklearn_computes_them(case):
    scores, targets = case
    n_classes = scores.shape[1]
    metrics = classification_metrics(_top(scores), targets, n_classes)
    order = np.argsort(-scores, axis=1, kind="stable")
    assert metrics["acc1"] == np.mean(order[:, 0] == targets)
    if n_classes >= 5:
        assert metrics["acc5"] == np.mean(
            [t in row[:5] for t, row in zip(targets, order, strict=True)]
        )
    else:
        assert math.isnan(metrics["acc5"])  # as CLIP_benchmark reports it
    expected = balanced_accuracy_score(targets, order[:, 0])
    assert math.isclose(metrics["mean_per_class_recall"], expected, abs_tol=1e-12)


def _brute_ranks(scores: np.ndarray, positives: np.ndarray) -> np.ndarray:
    order = np.argsort(-scores, axis=1, kind="stable")
    return np.array([list(row).index(p) for row, p in zip(order, positives, strict=True)])


@given(st.data())
@settings(max_examples=200, deadline=None)
def test_ranks_of_positives_with_ties_to_the_lower_index(data):
    n, m = data.draw(st.integers(1, 12)), data.draw(st.integers(1, 12))
    scores = data.draw(arrays(np.float32, (n, m), elements=st.sampled_from([0.0, 0.25, 1.0])))
    positives = data.draw(arrays(np.int64, n, elements=st.integers(0, m - 1)))
    assert ranks(scores, positives).tolist() == _brute_ranks(scores, positives).tolist()


@given(st.data())
@settings(max_examples=200, deadline=None)
def test_best_rank_of_each_images_captions(data):
    images = data.draw(st.integers(1, 6))
    per_image = data.draw(st.lists(st.integers(1, 4), min_size=images, max_size=images))
    owner = np.repeat(np.arange(images), per_image)
    owner = data.draw(st.permutations(owner.tolist()))  # captions in any order
    owner = np.asarray(owner)
    scores = data.draw(
        arrays(np.float32, (images, len(owner)), elements=st.sampled_from([0.0, 0.5, 1.0]))
    )
    start = data.draw(st.integers(0, images - 1))
    rows = np.arange(start, images)  # a batch of the images: rows keep their numbers
    order = np.argsort(-scores[rows], axis=1, kind="stable")
    expected = [int(np.flatnonzero(owner[o] == r)[0]) for o, r in zip(order, rows, strict=True)]
    assert best_ranks(scores[rows], rows, owner).tolist() == expected


def test_recall_counts_ranks_below_k():
    assert recall_at(np.array([0, 4, 5, 9, 10]), (1, 5, 10)) == {1: 0.2, 5: 0.4, 10: 0.8}


def test_text_and_image_retrieval_differ_when_captions_are_shared():
    # image 0 owns captions 0 and 1; image 1 owns caption 2. Caption 1 is image 0's best.
    scores = np.array([[0.1, 0.9, 0.5], [0.2, 0.3, 0.4]])
    owner = np.array([0, 0, 1])
    assert best_ranks(scores, np.array([0, 1]), owner).tolist() == [0, 0]
    assert ranks(scores.T, owner).tolist() == [1, 0, 1]  # each caption's image among images
