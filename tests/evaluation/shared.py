"""Real anchors shared by the evaluation and flow tests, embedded once per test session.

Anchors: Fashion-MNIST train images (stratified) with captions from `asif.demo.anchor_captions`,
embedded with efficientnet-lite0 and all-MiniLM-L6-v2. The benchmark embedding cache lives in
one session-wide folder, so each test image set is embedded once.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from asif.datasets import fashion_mnist
from asif.demo import anchor_captions
from asif.encoders import load_image_encoder, load_text_encoder
from asif.store.batch import build_anchor_batch
from asif.store.table import AnchorTable

IMAGE_ENCODER = "efficientnet-lite0"
TEXT_ENCODER = "all-MiniLM-L6-v2"
ANCHORS_PER_CLASS = 12
TEST_LIMIT = 60
K = 50


@dataclass(frozen=True)
class AnchorPairs:
    """Row-aligned anchor urls, captions and embeddings."""

    urls: list[str]
    captions: list[str]
    image: np.ndarray
    text: np.ndarray

    def batch(self, rows: slice) -> object:
        image_encoder, text_encoder = load_image_encoder(IMAGE_ENCODER), load_text_encoder()
        n = len(self.urls[rows])
        return build_anchor_batch(
            urls=self.urls[rows],
            captions=self.captions[rows],
            widths=[28] * n,
            heights=[28] * n,
            image_embeddings=self.image[rows],
            text_embeddings=self.text[rows],
            image_encoder=image_encoder.name,
            text_encoder=text_encoder.name,
        )


@cache
def anchor_pairs() -> AnchorPairs:
    """`ANCHORS_PER_CLASS` anchors per class, shuffled so any prefix covers every class."""
    data = fashion_mnist("train").stratified(ANCHORS_PER_CLASS, seed=0)
    order = np.random.default_rng(0).permutation(len(data))
    data = data.subset(order)
    image = load_image_encoder(IMAGE_ENCODER).encode(list(data.images))
    captions = anchor_captions(data, seed=0)
    text = load_text_encoder(TEXT_ENCODER).encode(captions)
    urls = [f"fashion-mnist-train#{i}" for i in order]
    return AnchorPairs(urls, captions, image, text)


def make_anchor_table(uri: str | Path, rows: slice = slice(None)) -> AnchorTable:
    """An anchor table at `uri` holding `anchor_pairs()[rows]`."""
    pairs = anchor_pairs()
    table = AnchorTable.create_or_open(
        str(uri),
        image_encoder=load_image_encoder(IMAGE_ENCODER).name,
        text_encoder=load_text_encoder(TEXT_ENCODER).name,
        image_dim=pairs.image.shape[1],
        text_dim=pairs.text.shape[1],
    )
    table.upsert(pairs.batch(rows))
    return table


@cache
def session_cache_dir() -> Path:
    """One embedding cache folder for the whole test session, removed at exit."""
    path = Path(tempfile.mkdtemp(prefix="asif-eval-cache-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path
