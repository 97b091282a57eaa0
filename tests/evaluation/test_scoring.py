"""Batch-by-batch scoring equals the dense computation, for any batch size, and its memory
does not grow with the number of anchors (nothing dense and anchors-wide is built)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from asif.evaluation.batches import LocalBatches
from asif.evaluation.metrics import RECALL_KS
from asif.evaluation.scoring import classify, relative_rows, retrieval_ranks
from asif.model import AsifModel
from asif.model.relative import similarity
from asif.model.settings import ModelSettings


def _model(n_anchors: int, dim: int = 16, k: int = 20, seed: int = 0) -> AsifModel:
    rng = np.random.default_rng(seed)
    images, texts = rng.normal(size=(2, n_anchors, dim)).astype(np.float32)
    settings = ModelSettings("fake-image", "fake-text", k=k, p=4.0)
    return AsifModel.from_embeddings(images, texts, [f"c{i}" for i in range(n_anchors)], settings)


def _retrieval_data(n_images: int, per_image: int, dim: int = 16, seed: int = 1):
    rng = np.random.default_rng(seed)
    images = rng.normal(size=(n_images, dim)).astype(np.float32)
    caption_image = np.repeat(np.arange(n_images), per_image)
    rng.shuffle(caption_image)
    texts = images[caption_image] + rng.normal(scale=1.5, size=(len(caption_image), dim))
    return images, texts.astype(np.float32), caption_image


@pytest.mark.parametrize("batch_size", [1, 7, 1000])
def test_classify_in_batches_is_the_dense_prediction(batch_size):
    model = _model(300)
    rng = np.random.default_rng(2)
    images, prompts = rng.normal(size=(40, 16)), rng.normal(size=(6 * 2, 16))
    classifiers = [
        model.zero_shot_classifier([f"class {i}" for i in range(6)], ["{}", "a {}"], s, prompts)
        for s in ("max", "mean")
    ]
    answers = classify(model, classifiers, images, LocalBatches(), batch_size)
    for classifier, got in zip(classifiers, answers, strict=True):
        scores = classifier.scores(model.image_relative(images))
        ranked = -np.sort(-scores, axis=1)[:, :5]
        # a batch's products may differ in the last bits from another shape's (BLAS kernels):
        # the classes found score what the dense best five score
        np.testing.assert_allclose(np.take_along_axis(scores, got.top, 1), ranked, atol=1e-6)
        np.testing.assert_allclose(got.best, ranked[:, 0], atol=1e-6)
        assert np.mean(got.top == np.argsort(-scores, axis=1, kind="stable")[:, :5]) > 0.95


@pytest.mark.parametrize("batch_size", [1, 16, 1000])
def test_retrieval_ranks_are_the_dense_ranks(batch_size):
    model = _model(400)
    images, texts, caption_image = _retrieval_data(30, 3)
    image_ranks, text_ranks = retrieval_ranks(
        model, images, texts, caption_image, LocalBatches(), batch_size
    )
    scores = similarity(model.image_relative(images), model.text_relative(texts))
    by_caption = np.argsort(-scores.T, axis=1, kind="stable")
    expected_images = [list(row).index(caption_image[j]) for j, row in enumerate(by_caption)]
    by_image = np.argsort(-scores, axis=1, kind="stable")
    expected_texts = [
        int(np.flatnonzero(caption_image[row] == i)[0]) for i, row in enumerate(by_image)
    ]
    assert image_ranks.tolist() == expected_images
    assert text_ranks.tolist() == expected_texts
    assert max(np.mean(image_ranks < k) for k in RECALL_KS) > 0.3  # far above chance (1/30)


def test_relative_rows_are_the_models():
    model = _model(100)
    x = np.random.default_rng(3).normal(size=(25, 16))
    got = relative_rows(model, x, "text", LocalBatches(), batch_size=4)
    want = model.text_relative(x)
    assert np.mean(got.indices == want.indices) > 0.99  # last-bit ties may swap
    np.testing.assert_allclose(got.values, want.values, atol=1e-6)
    assert got.n_anchors == want.n_anchors


def _peak_bytes(n_anchors: int) -> int:
    """The traced peak of a retrieval after one untraced run (the first compiles the
    scan's loops for the path this size takes: numba's own allocations, once)."""
    model = _model(n_anchors, k=32)
    images, texts, caption_image = _retrieval_data(400, 5)
    retrieval_ranks(model, images, texts, caption_image, LocalBatches(), batch_size=64)
    tracemalloc.start()
    try:
        retrieval_ranks(model, images, texts, caption_image, LocalBatches(), batch_size=64)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_retrieval_memory_does_not_grow_with_the_anchors():
    """400 images x 2,000 captions: the peak is the same at 20k and 200k anchors, far below
    one dense row block over the anchors (64 x 200k float32 = 51 MB)."""
    small, large = _peak_bytes(20_000), _peak_bytes(200_000)
    assert large < 1.5 * small + (4 << 20), (small, large)
    assert large < 64 * 200_000 * 4 / 2
