"""Anchor rows for the store's tests: unit embeddings of small dimensions, one batch at a time."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from asif.store.batch import build_anchor_batch

DI, DT = 8, 4
ENC = dict(image_encoder="img-enc", text_encoder="txt-enc", image_dim=DI, text_dim=DT)


def unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.normal(size=(n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def make_batch(
    start: int,
    n: int,
    *,
    seed: int = 0,
    di: int = DI,
    dt: int = DT,
    encoders: tuple[str, str] | None = ("img-enc", "txt-enc"),
    shard: str = "s0",
) -> pa.Table:
    """Rows `start` .. `start + n` (ids and embeddings depend only on the row number)."""
    rng = np.random.default_rng(seed + start)
    return build_anchor_batch(
        urls=[f"http://127.0.0.1/img/{i}.jpg" for i in range(start, start + n)],
        captions=[f"a photo of thing {i}" for i in range(start, start + n)],
        widths=[32 + i for i in range(n)],
        heights=[24] * n,
        image_embeddings=unit(rng, n, di),
        text_embeddings=unit(rng, n, dt),
        shard=shard,
        image_encoder=encoders[0] if encoders else None,
        text_encoder=encoders[1] if encoders else None,
    )
