"""Anchor batches for the validation and commit tests: a good one, and one per kind of fault."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from asif.store.batch import build_anchor_batch

DI, DT = 8, 4


def unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.normal(size=(n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def make_batch(n=12, start=0, *, seed=0, di=DI, dt=DT, image=None, captions=None, widths=None):
    rng = np.random.default_rng(seed)
    return build_anchor_batch(
        urls=[f"http://127.0.0.1/{i}.jpg" for i in range(start, start + n)],
        captions=captions or [f"caption {i}" for i in range(start, start + n)],
        widths=widths or [64] * n,
        heights=[48] * n,
        image_embeddings=unit(rng, n, di) if image is None else image,
        text_embeddings=unit(rng, n, dt),
        shard="shard-0",
        image_encoder="img-enc",
        text_encoder="txt-enc",
    )


def set_col(batch, name, values, type_=None):
    i = batch.schema.get_field_index(name)
    field = batch.schema.field(i)
    type_ = type_ or field.type
    return batch.set_column(i, pa.field(name, type_), pa.array(values, type_))


def bad_batch(kind: str) -> pa.Table:
    b = make_batch()
    ids = b.column("id").to_pylist()
    if kind == "duplicate id":
        return set_col(b, "id", [ids[0]] + ids[:-1])
    if kind == "null id":
        return set_col(b, "id", [None] + ids[1:])
    if kind == "blank caption":
        return make_batch(captions=["   "] + [f"c{i}" for i in range(1, 12)])
    if kind == "null caption":
        return set_col(b, "caption", [None] + [f"c{i}" for i in range(1, 12)])
    if kind == "wrong image dim":
        return make_batch(di=DI + 1)
    if kind == "ragged text dim":
        rows = b.column("text_embedding").to_pylist()
        rows[4] = rows[4][:-1] + [0.0, 0.0]
        rows[4] = list(np.asarray(rows[4]) / np.linalg.norm(rows[4]))
        return set_col(b, "text_embedding", rows, pa.list_(pa.float32()))
    if kind == "non-unit norm":
        image = unit(np.random.default_rng(0), 12, DI)
        image[2] *= 1.1
        return make_batch(image=image)
    if kind == "nan":
        image = unit(np.random.default_rng(0), 12, DI)
        image[3, 1] = np.nan
        return make_batch(image=image)
    if kind == "inf":
        image = unit(np.random.default_rng(0), 12, DI)
        image[3, 1] = -np.inf
        return make_batch(image=image)
    if kind == "zero width":
        return make_batch(widths=[0] + [64] * 11)
    if kind == "huge width":
        return make_batch(widths=[64] * 11 + [70000])
    if kind == "null height":
        return set_col(b, "height", [None] + [48] * 11)
    if kind == "missing caption column":
        return b.drop_columns(["caption"])
    if kind == "null embedding":
        return set_col(b, "image_embedding", [None] + b.column("image_embedding").to_pylist()[1:])
    raise AssertionError(kind)
