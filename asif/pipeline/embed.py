"""Embed image shards into anchor rows with Ray Data: both frozen encoders, once per actor.

Reads the shards `asif.pipeline.download` writes (img2dataset parquet with image bytes, or
webdataset `.tar`), keeps the pairs whose download succeeded, and streams pyarrow tables of
anchor rows (`asif.store.batch.build_anchor_batch`), at most `rows_per_batch` rows each, so the
caller can validate and commit batch by batch. Rows whose image bytes do not decode are dropped
and reported in each batch's `failed` table; they never stop the job.

Shards are read by plain pyarrow/tarfile code in Ray tasks (one shard per task), not by
`ray.data.read_parquet`/`read_webdataset`: in Ray 2.60 those list files in a task that needs a
whole CPU (the actor pool must then leave one free or the job deadlocks) and, without aiohttp,
sometimes fail on a threaded import race of fsspec's http module.
"""

from __future__ import annotations

import json
import os
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from asif.store.batch import build_anchor_batch

if TYPE_CHECKING:
    import ray.data

IMAGE_COLUMNS = ("jpg", "png", "webp")
"""Where img2dataset puts the image bytes (named after its `encode_format`)."""
PAIR_SCHEMA = pa.schema(
    [("url", pa.string()), ("caption", pa.string()), ("image", pa.binary()), ("shard", pa.string())]
)
"""The rows `read_shard` yields and the embedder takes."""
FAILED_SCHEMA = pa.schema(
    [("url", pa.string()), ("caption", pa.string()), ("shard", pa.string()), ("error", pa.string())]
)
READ_CPUS = 0.25
"""CPUs a shard-reading task reserves: reading is light, the actors get the rest."""
READ_ROWS = 256
"""Rows per block a shard-reading task yields."""


@dataclass(frozen=True)
class EmbeddedBatch:
    """Embedded rows (`anchor_columns`) and the rows dropped because their image did not decode."""

    table: pa.Table
    failed: pa.Table


@dataclass(frozen=True)
class EmbedOptions:
    """Which encoders embed the pairs and how the Ray job runs.

    `image_encoder`/`text_encoder` are encoder specs (`asif.encoders`); `batch_size` is the
    encoders' batch, `rows_per_batch` the most rows of a yielded batch. `num_actors` Ray actors
    embed, each reserving `cpus_per_actor` CPUs (None: see `iter_embedded_batches`);
    `use_gpu=None` uses a GPU per actor when the cluster has one; `ray_address` as in
    `init_ray`. Raises `ValueError` for a value out of range.
    """

    __pydantic_config__ = {"extra": "forbid"}  # flow parameter schema: no unknown keys

    image_encoder: str = "efficientnet-lite2"
    text_encoder: str = "all-MiniLM-L6-v2"
    batch_size: int = 64
    rows_per_batch: int = 1024
    num_actors: int = 1
    cpus_per_actor: float | None = None
    use_gpu: bool | None = None
    ray_address: str | None = None

    def __post_init__(self) -> None:
        for name in ("batch_size", "rows_per_batch", "num_actors"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)}")
        if self.cpus_per_actor is not None and self.cpus_per_actor <= 0:
            raise ValueError(f"cpus_per_actor must be positive, not {self.cpus_per_actor}")


class ImageTextEmbedder:
    """Ray Data callable: (url, caption, image, shard) batches -> embedded rows plus `error`."""

    def __init__(
        self, image_encoder: str, text_encoder: str, device: str, batch_size: int, threads: int
    ) -> None:
        import torch

        from asif.encoders import load_image_encoder, load_text_encoder

        torch.set_num_threads(max(1, min(threads, os.cpu_count() or 1)))

        self.image_encoder = load_image_encoder(image_encoder, device=device)
        self.text_encoder = load_text_encoder(text_encoder, device=device)
        self.batch_size = batch_size

    def __call__(self, batch: pa.Table) -> pa.Table:
        from asif.encoders import decode_image
        from asif.errors import ImageDecodeError

        urls = batch["url"].to_pylist()
        captions = batch["caption"].to_pylist()
        images, sizes = [], []
        errors: list[str | None] = []
        for url, data in zip(urls, batch["image"].to_pylist(), strict=True):
            try:
                image = decode_image(data, source=url)
            except ImageDecodeError as err:
                errors.append(str(err))
                sizes.append((0, 0))
                continue
            images.append(image)
            errors.append(None)
            sizes.append(image.size)
        ok = np.array([e is None for e in errors], dtype=bool)
        n = len(urls)
        image_emb = np.zeros((n, self.image_encoder.dim), dtype=np.float32)
        text_emb = np.zeros((n, self.text_encoder.dim), dtype=np.float32)
        if images:
            image_emb[ok] = self.image_encoder.encode(images, batch_size=self.batch_size)
            ok_captions = [c for c, good in zip(captions, ok, strict=True) if good]
            text_emb[ok] = self.text_encoder.encode(ok_captions, batch_size=self.batch_size)
        rows = build_anchor_batch(
            urls=urls,
            captions=captions,
            widths=[w for w, _ in sizes],
            heights=[h for _, h in sizes],
            image_embeddings=image_emb,
            text_embeddings=text_emb,
            shard=batch["shard"].to_pylist(),
        )
        return rows.append_column(pa.field("error", pa.string()), pa.array(errors, pa.string()))


def init_ray(address: str | None = None) -> None:
    """Reuse a live Ray session; else join `address` or `RAY_ADDRESS`; else start a local Ray.

    A local Ray gets every CPU of the machine and no dashboard. Joining a cluster whose head
    runs with token auth (Ray 2.60 turns it on when a token exists, e.g. ~/.ray/auth_token
    written by any earlier local `ray.init()`) needs `RAY_AUTH_MODE=token` and the token
    (~/.ray/auth_token, `RAY_AUTH_TOKEN` or `RAY_AUTH_TOKEN_PATH`) in this process's env.
    """
    import ray

    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")
    if not address:
        ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False)
        return
    try:
        ray.init(address=address)
    except ConnectionError as err:
        if os.environ.get("RAY_AUTH_MODE"):
            raise
        raise ConnectionError(
            f"{err}. If the cluster uses token auth, set RAY_AUTH_MODE=token and provide its "
            "token (~/.ray/auth_token, RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH)"
        ) from err


def read_shard(path: str | Path, rows: int = READ_ROWS) -> Iterator[pa.Table]:
    """(url, caption, image bytes, shard file name) tables of at most `rows` rows.

    Takes img2dataset parquet shards (image column `jpg`, `png` or `webp`) and webdataset
    `.tar` shards; pairs without image bytes (failed downloads) are left out.
    """
    path = Path(path)
    chunks = _tar_rows(path, rows) if path.suffix == ".tar" else _parquet_rows(path, rows)
    for urls, captions, images in chunks:
        columns = {"url": urls, "caption": captions, "image": images}
        yield pa.table({**columns, "shard": [path.name] * len(urls)}, schema=PAIR_SCHEMA)


def read_shards(shards: Sequence[str | Path]) -> ray.data.Dataset:
    """A Ray dataset of `read_shard` rows: one reading task per shard.

    Shard paths must be readable from every Ray node (local files on one machine, or a
    shared mount).
    """
    import ray

    paths = [str(Path(s).resolve()) for s in shards]
    items = ray.data.from_items(paths, override_num_blocks=len(paths))
    return items.map_batches(_read_items, batch_size=1, batch_format="pyarrow", num_cpus=READ_CPUS)


def iter_embedded_batches(
    shards: Sequence[str | Path], options: EmbedOptions = EmbedOptions()
) -> Iterator[EmbeddedBatch]:
    """Embed the shards' pairs with a pool of Ray actors; yield batches as they come.

    With `cpus_per_actor=None`, GPU actors reserve one CPU each and CPU actors share the
    cluster's CPUs but `READ_CPUS` (kept for a reading task: reserving them all deadlocks the
    job). Each actor runs torch on its share of the cluster's CPUs (Ray's reservation is only
    logical). See `init_ray` for how the Ray session is found.
    """
    if not shards:
        return
    import ray

    init_ray(options.ray_address)
    gpus = ray.cluster_resources().get("GPU", 0)
    if options.use_gpu and not gpus:
        raise ValueError("use_gpu=True but the Ray cluster has no GPU")
    use_gpu = bool(gpus) if options.use_gpu is None else options.use_gpu
    cpus = ray.cluster_resources().get("CPU", 1.0)
    cpus_per_actor = options.cpus_per_actor
    if cpus_per_actor is None:
        cpus_per_actor = 1.0 if use_gpu else max(cpus - READ_CPUS, READ_CPUS) / options.num_actors
    embedded = read_shards(shards).map_batches(
        ImageTextEmbedder,
        fn_constructor_kwargs={
            "image_encoder": options.image_encoder,
            "text_encoder": options.text_encoder,
            "device": "cuda" if use_gpu else "cpu",
            "batch_size": options.batch_size,
            "threads": round(cpus / options.num_actors),
        },
        compute=ray.data.ActorPoolStrategy(size=options.num_actors),
        batch_size=options.batch_size,
        batch_format="pyarrow",
        num_gpus=1 if use_gpu else 0,
        num_cpus=cpus_per_actor,
    )
    for block in embedded.iter_batches(batch_size=options.rows_per_batch, batch_format="pyarrow"):
        table = cast(pa.Table, block)  # what batch_format="pyarrow" yields
        ok = pc.is_null(table["error"])
        yield EmbeddedBatch(
            table=table.filter(ok).drop_columns(["error"]),
            failed=table.filter(pc.invert(ok)).select(FAILED_SCHEMA.names).cast(FAILED_SCHEMA),
        )


def _read_items(batch: pa.Table) -> Iterator[pa.Table]:
    for path in batch["item"].to_pylist():
        yield from read_shard(path)


def _parquet_rows(path: Path, rows: int) -> Iterator[tuple[pa.Array, pa.Array, pa.Array]]:
    shard = pq.ParquetFile(path)
    image_col = next((c for c in IMAGE_COLUMNS if c in shard.schema_arrow.names), None)
    if image_col is None:
        raise ValueError(
            f"shard {path} has no image column ({'/'.join(IMAGE_COLUMNS)}); the .parquet files "
            "of a webdataset folder hold only metadata: pass its .tar files"
        )
    for batch in shard.iter_batches(batch_size=rows, columns=["url", "caption", image_col]):
        batch = batch.filter(pc.is_valid(batch.column(image_col)))
        if batch.num_rows:
            yield batch.column("url"), batch.column("caption"), batch.column(image_col)


def _tar_rows(path: Path, rows: int) -> Iterator[tuple[list, list, list]]:
    """Samples of an img2dataset tar: `<key>.json` (url, caption) beside `<key>.jpg|png|webp`."""
    samples: dict[str, dict[str, bytes]] = {}
    with tarfile.open(path, "r|*") as tar:
        for member in tar:
            key, _, ext = member.name.rpartition(".")
            data = tar.extractfile(member) if member.isfile() else None
            if data is not None:
                samples.setdefault(key, {})[ext] = data.read()
    urls, captions, images = [], [], []
    for files in samples.values():
        image = next((files[e] for e in IMAGE_COLUMNS if e in files), None)
        if image is None or "json" not in files:
            continue
        meta = json.loads(files["json"])
        urls.append(meta["url"])
        captions.append(meta["caption"])
        images.append(image)
        if len(urls) == rows:
            yield urls, captions, images
            urls, captions, images = [], [], []
    if urls:
        yield urls, captions, images
