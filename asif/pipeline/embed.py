"""Embed image shards into anchor rows with Ray Data: both frozen encoders, once per actor.

Reads the shards `asif.pipeline.download` writes (img2dataset parquet with image bytes, or
webdataset `.tar`), keeps the pairs whose download succeeded, and streams pyarrow tables of
anchor rows (`asif.store.batch.build_anchor_batch`) so the caller can validate and commit batch
by batch while the embedding goes on: a batch is yielded once it holds `rows_per_batch` rows or
once its first row has waited `commit_seconds`, so a killed run loses only the rows in flight.
Rows whose image bytes do not decode are dropped and reported in each batch's `failed` table;
they never stop the job. `width`/`height` are the source image's (img2dataset's
`original_width`/`original_height`), not the resized copy's in the shard; the `thumbnail`
(`asif.store.thumbnails`) is made from the image the encoder decoded.

Shards are read by plain pyarrow/tarfile code in Ray tasks (one shard per task), not by
`ray.data.read_parquet`/`read_webdataset`: in Ray 2.60 those list files in a task that needs a
whole CPU (the actor pool must then leave one free or the job deadlocks) and, without aiohttp,
sometimes fail on a threaded import race of fsspec's http module.

A local Ray started here does not outlive this process: Ray kills its GCS and raylet with it
(PR_SET_PDEATHSIG) and workers follow the raylet, but the raylet's dashboard and runtime-env
agents linger about 60 s after a SIGKILL (they report the death to the dead GCS, a 60 s
timeout), so `init_ray` starts a small watchdog that SIGKILLs them (`reap_with_this_process`).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from asif.encoders.common import PRECISIONS, EncoderSettings, Precision
from asif.store.batch import build_anchor_batch
from asif.store.thumbnails import THUMBNAIL_SIDE

if TYPE_CHECKING:
    import ray.data
    import torch

IMAGE_COLUMNS = ("jpg", "png", "webp")
"""Where img2dataset puts the image bytes (named after its `encode_format`)."""
PAIR_SCHEMA = pa.schema(
    [
        ("url", pa.string()),
        ("caption", pa.string()),
        ("image", pa.binary()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("shard", pa.string()),
    ]
)
"""The rows `read_shard` yields and the embedder takes; `width`/`height`: the source image's
size (null when the shard does not say: the decoded image's size is used)."""
_TAR_COLUMNS = ("url", "caption", "image", "width", "height")
FAILED_SCHEMA = pa.schema(
    [("url", pa.string()), ("caption", pa.string()), ("shard", pa.string()), ("error", pa.string())]
)
READ_CPUS = 1.0
"""CPUs a shard-reading task reserves. Reading is light, but Ray's streaming repartition (which
cuts the shards into encoder batches) runs with Ray's default of one CPU and fuses with the
reading step only when both reserve the same: with less here the repartition is a task of its
own that waits forever for a CPU the actors hold (a deadlock on 2 cores)."""
READ_ROWS = 256
"""Rows per block `read_shard` yields by default."""


@dataclass(frozen=True)
class EmbeddedBatch:
    """Embedded rows (`anchor_columns`) and the rows dropped because their image did not decode."""

    table: pa.Table
    failed: pa.Table


@dataclass(frozen=True)
class EmbedOptions:
    """Which encoders embed the pairs and how the Ray job runs.

    `image_encoder`/`text_encoder` are encoder specs (`asif.encoders`). `batch_size` is the
    encoders' batch on a CPU actor, `gpu_batch_size` on a GPU actor. A yielded batch (one commit)
    holds at most `rows_per_batch` rows and is yielded once full or once its first row has
    waited `commit_seconds` (checked as each actor batch arrives). `num_actors` Ray actors
    embed (None: one per `gpus_per_actor` share of the cluster's GPUs, else 1), each reserving
    `cpus_per_actor` CPUs (None: see `iter_embedded_batches`) and, with a GPU, `gpus_per_actor`
    of one (fractions share it); `use_gpu=None` uses GPUs when the cluster has them.
    `precision`, `channels_last`, `decode_threads` are the encoders' `EncoderSettings`
    (`decode_threads=None`: 1 on CPU actors, the actor's CPUs with a GPU; 0 decodes in turn).
    Each row keeps a thumbnail at most `thumbnail_side` px a side (0: none).
    `ray_address` as in `init_ray`. Raises `ValueError` for a value out of range.
    """

    __pydantic_config__ = {"extra": "forbid"}  # flow parameter schema: no unknown keys

    image_encoder: str = "efficientnet-lite2"
    text_encoder: str = "all-MiniLM-L6-v2"
    batch_size: int = 64
    gpu_batch_size: int = 256
    rows_per_batch: int = 1024
    commit_seconds: float = 30.0
    num_actors: int | None = None
    cpus_per_actor: float | None = None
    use_gpu: bool | None = None
    gpus_per_actor: float = 1.0
    precision: Precision = "auto"
    channels_last: bool = True
    decode_threads: int | None = None
    thumbnail_side: int = THUMBNAIL_SIDE
    ray_address: str | None = None

    def __post_init__(self) -> None:
        for name in ("batch_size", "gpu_batch_size", "rows_per_batch", "num_actors"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1, not {value}")
        if self.cpus_per_actor is not None and self.cpus_per_actor <= 0:
            raise ValueError(f"cpus_per_actor must be positive, not {self.cpus_per_actor}")
        if not 0 < self.gpus_per_actor <= 1:
            raise ValueError(f"gpus_per_actor must be in (0, 1], not {self.gpus_per_actor}")
        if self.commit_seconds < 0:
            raise ValueError(f"commit_seconds must be 0 or more, not {self.commit_seconds}")
        if self.decode_threads is not None and self.decode_threads < 0:
            raise ValueError(f"decode_threads must be 0 or more, not {self.decode_threads}")
        if self.thumbnail_side < 0:
            raise ValueError(f"thumbnail_side must be 0 or more, not {self.thumbnail_side}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, not {self.precision!r}")


class ImageTextEmbedder:
    """Ray Data callable: `PAIR_SCHEMA` batches -> embedded rows plus `error`.

    With decode threads a batch's images are decoded and resized (and thumbnails made, unless
    `thumbnail_side` is 0) while its captions are encoded (no threads: in turn, before them).
    """

    def __init__(
        self,
        image_encoder: str,
        text_encoder: str,
        device: str,
        batch_size: int,
        threads: int,
        settings: EncoderSettings,
        thumbnail_side: int = THUMBNAIL_SIDE,
    ) -> None:
        import torch

        from asif.encoders import load_image_encoder, load_text_encoder
        from asif.encoders.common import TorchImageEncoder

        torch.set_num_threads(max(1, min(threads, os.cpu_count() or 1)))
        image = load_image_encoder(image_encoder, device=device, settings=settings)
        if not isinstance(image, TorchImageEncoder):
            raise TypeError(f"the pipeline embeds with torch image encoders, not {image!r}")
        self.image_encoder = image
        self.text_encoder = load_text_encoder(text_encoder, device=device, settings=settings)
        self.batch_size = batch_size
        self.thumbnail_side = thumbnail_side
        decoders = settings.decode_threads
        self.pool = ThreadPoolExecutor(decoders, thread_name_prefix="decode") if decoders else None

    def __call__(self, rows: pa.Table) -> pa.Table:
        run = self.pool.map if self.pool is not None else map  # pool.map submits all at once
        decoding = run(self._prepare, rows["url"].to_pylist(), rows["image"].to_pylist())
        captions = rows["caption"].to_pylist()
        text_emb = self.text_encoder.encode(captions, batch_size=self.batch_size)
        return self._embedded(rows, list(decoding), text_emb)

    def _embedded(self, rows: pa.Table, images: list[_Decoded], text_emb: np.ndarray) -> pa.Table:
        good = [i for i, image in enumerate(images) if image.tensor is not None]
        image_emb = np.zeros((rows.num_rows, self.image_encoder.dim), dtype=np.float32)
        if good:
            inputs = [t for t in (image.tensor for image in images) if t is not None]
            image_emb[good] = self.image_encoder.embed_prepared(inputs)
        sizes = [
            (w, h) if w is not None and h is not None else image.size
            for w, h, image in zip(
                rows["width"].to_pylist(), rows["height"].to_pylist(), images, strict=True
            )
        ]
        out = build_anchor_batch(
            urls=rows["url"].to_pylist(),
            captions=rows["caption"].to_pylist(),
            widths=[w for w, _ in sizes],
            heights=[h for _, h in sizes],
            image_embeddings=image_emb,
            text_embeddings=text_emb,
            shard=rows["shard"].to_pylist(),
            thumbnails=[image.thumbnail for image in images],
        )
        errors = pa.array([image.error for image in images], pa.string())
        return out.append_column(pa.field("error", pa.string()), errors)

    def _prepare(self, url: str, data: bytes) -> _Decoded:
        from asif.encoders import decode_image
        from asif.errors import ImageDecodeError
        from asif.store.thumbnails import make_thumbnail

        try:
            image = decode_image(data, source=url)
            tensor = self.image_encoder.prepare(image, source=url)
        except ImageDecodeError as err:
            return _Decoded((0, 0), None, None, str(err))
        side = self.thumbnail_side
        return _Decoded(image.size, tensor, make_thumbnail(image, side) if side else None, None)


class _Decoded(NamedTuple):
    """One image of an actor's batch: its decoded size, its model input and thumbnail, or why
    it failed."""

    size: tuple[int, int]
    tensor: torch.Tensor | None
    thumbnail: bytes | None
    error: str | None


def init_ray(address: str | None = None) -> None:
    """Reuse a live Ray session; else join `address` or `RAY_ADDRESS`; else start a local Ray.

    A local Ray gets every CPU of the machine and no dashboard, and ends with this process
    even on SIGKILL (`reap_with_this_process`). Joining a cluster whose head runs with token
    auth (Ray 2.60 turns it on when a token exists, e.g. ~/.ray/auth_token written by any
    earlier local `ray.init()`) needs `RAY_AUTH_MODE=token` and the token (~/.ray/auth_token,
    `RAY_AUTH_TOKEN` or `RAY_AUTH_TOKEN_PATH`) in this process's env.
    """
    import ray

    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")
    if not address:
        before = _children()
        cpus = max(os.cpu_count() or 1, 1 + int(READ_CPUS))  # room for the actors and a reader
        ray.init(address="local", num_cpus=cpus, include_dashboard=False)
        reap_with_this_process(_children() - before)
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


_REAPER = r"""
import os, signal, sys, time
driver, roots = int(sys.argv[1]), {int(p) for p in sys.argv[2:]}
def scan():
    procs = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            procs[int(name)] = (fields[0] != b"Z", int(fields[1]), fields[19])
    return procs
def alive(procs, pid, start):
    return pid in procs and procs[pid][0] and procs[pid][2] == start
procs = scan()
driver_start = procs[driver][2] if driver in procs else None
tracked = {p: procs[p][2] for p in roots if p in procs}
def running():
    ray_alive = any(alive(procs, p, tracked[p]) for p in roots & set(tracked))
    return ray_alive and alive(procs, driver, driver_start)
while running():
    children = {}
    for pid, (_, ppid, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    stack = [p for p, start in tracked.items() if alive(procs, p, start)]
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in tracked:
                tracked[child] = procs[child][2]
                stack.append(child)
    time.sleep(1)
    procs = scan()
for pid, start in tracked.items():
    if alive(procs, pid, start):
        os.kill(pid, signal.SIGKILL)
"""
"""Tracks the root pids and their descendants (/proc, once a second) while this process and a
root live; then SIGKILLs what is left of them. Start times tell a reused pid."""


def reap_with_this_process(roots: Iterable[int]) -> subprocess.Popen[bytes] | None:
    """A watchdog process that SIGKILLs `roots` and their descendants once this process or all
    roots have died (Linux only: it reads /proc; elsewhere None)."""
    roots = list(roots)
    if not roots or not sys.platform.startswith("linux"):
        return None
    return subprocess.Popen(
        [sys.executable, "-c", _REAPER, str(os.getpid()), *map(str, roots)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a kill of this process group leaves it to clean up
    )


def read_shard(path: str | Path, rows: int = READ_ROWS) -> Iterator[pa.Table]:
    """`PAIR_SCHEMA` tables of at most `rows` rows.

    Takes img2dataset parquet shards (image column `jpg`, `png` or `webp`) and webdataset
    `.tar` shards; pairs without image bytes (failed downloads) are left out.
    """
    path = Path(path)
    chunks = _tar_rows(path, rows) if path.suffix == ".tar" else _parquet_rows(path, rows)
    for columns in chunks:
        n = len(columns["url"])
        yield pa.table({**columns, "shard": [path.name] * n}, schema=PAIR_SCHEMA)


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
    shards: Sequence[str | Path],
    options: EmbedOptions = EmbedOptions(),
    *,
    on_block: Callable[[EmbeddedBatch], None] | None = None,
) -> Iterator[EmbeddedBatch]:
    """Embed the shards' pairs (`embed_blocks`); yield batches to commit as they come
    (`rows_per_batch` rows, or fewer after `commit_seconds`); `on_block` sees each actor batch
    as it arrives (progress)."""
    if not shards:
        return
    for table in commit_groups(
        embed_blocks(shards, options),
        options.rows_per_batch,
        options.commit_seconds,
        on_block=None if on_block is None else lambda t: on_block(_split_failed(t)),
    ):
        yield _split_failed(table)


def embed_blocks(shards: Sequence[str | Path], options: EmbedOptions) -> Iterator[pa.Table]:
    """The actor batches of a pool of Ray actors embedding the shards, as they arrive:
    anchor rows plus `error` (null, or why the image did not decode).

    With `cpus_per_actor=None` the actors share the cluster's CPUs but `READ_CPUS` (kept for a
    reading task: reserving them all deadlocks the job); a GPU actor's CPUs decode for it.
    Each actor runs torch on `cpus_per_actor` threads when it is set, else on its share of
    all the cluster's CPUs: the reader's reservation is only logical (reading is light).
    See `init_ray` for how the Ray session is found.
    """
    import ray

    init_ray(options.ray_address)
    resources = ray.cluster_resources()
    gpus, cpus = resources.get("GPU", 0), resources.get("CPU", 1.0)
    if options.use_gpu and not gpus:
        raise ValueError("use_gpu=True but the Ray cluster has no GPU")
    use_gpu = bool(gpus) if options.use_gpu is None else options.use_gpu
    actors = options.num_actors or (max(1, int(gpus / options.gpus_per_actor)) if use_gpu else 1)
    if options.cpus_per_actor is None and cpus <= READ_CPUS:
        raise ValueError(
            f"the Ray cluster has {cpus:g} CPU(s): embedding needs more than {READ_CPUS:g} "
            "(one reads the shards), or set cpus_per_actor"
        )
    cpus_per_actor = options.cpus_per_actor or (cpus - READ_CPUS) / actors
    batch_size = options.gpu_batch_size if use_gpu else options.batch_size
    decode_threads = options.decode_threads
    if decode_threads is None:
        decode_threads = max(1, int(cpus_per_actor)) if use_gpu else 1
    settings = EncoderSettings(options.precision, options.channels_last, decode_threads)
    # A map task takes whole blocks and Ray Data merges its outputs into one block: unsplit,
    # a shard is one block, embedded and yielded whole. One encoder batch per block instead.
    batches = read_shards(shards).repartition(target_num_rows_per_block=batch_size)
    embedded = batches.map_batches(
        ImageTextEmbedder,
        fn_constructor_kwargs={
            "image_encoder": options.image_encoder,
            "text_encoder": options.text_encoder,
            "device": "cuda" if use_gpu else "cpu",
            "batch_size": batch_size,
            "threads": max(1, round(options.cpus_per_actor or cpus / actors)),
            "settings": settings,
            "thumbnail_side": options.thumbnail_side,
        },
        compute=ray.data.ActorPoolStrategy(size=actors),
        batch_size=batch_size,
        batch_format="pyarrow",
        num_gpus=options.gpus_per_actor if use_gpu else 0,
        num_cpus=cpus_per_actor,
    )
    blocks = embedded.iter_batches(batch_size=None, batch_format="pyarrow")
    yield from (cast(pa.Table, b) for b in blocks)  # what batch_format="pyarrow" yields


def commit_groups(
    blocks: Iterable[pa.Table],
    rows: int,
    seconds: float,
    *,
    on_block: Callable[[pa.Table], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[pa.Table]:
    """The rows of `blocks` regrouped into tables of at most `rows` rows: one is yielded once it
    is full, or once its first row has waited `seconds` (checked as each block arrives), and
    at the end. `on_block` sees each block first."""
    pending: list[pa.Table] = []
    count, since = 0, 0.0
    for block in blocks:
        if on_block is not None:
            on_block(block)
        if not block.num_rows:
            continue
        if not count:
            since = clock()
        pending.append(block)
        count += block.num_rows
        while count >= rows:
            table = pa.concat_tables(pending)
            yield table.slice(0, rows)
            rest = table.slice(rows)
            pending, count, since = [rest], rest.num_rows, clock()
        if count and clock() - since >= seconds:
            yield pa.concat_tables(pending)
            pending, count = [], 0
    if count:
        yield pa.concat_tables(pending)


def _split_failed(table: pa.Table) -> EmbeddedBatch:
    ok = pc.is_null(table["error"])
    return EmbeddedBatch(
        table=table.filter(ok).drop_columns(["error"]),
        failed=table.filter(pc.invert(ok)).select(FAILED_SCHEMA.names).cast(FAILED_SCHEMA),
    )


def _children() -> set[int]:
    """This process's children (Linux /proc; empty elsewhere)."""
    pids: set[int] = set()
    for task in Path(f"/proc/{os.getpid()}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            pids.update(int(p) for p in task.read_text().split())
    return pids


def _read_items(batch: pa.Table) -> Iterator[pa.Table]:
    for path in batch["item"].to_pylist():
        yield from read_shard(path)


def _parquet_rows(path: Path, rows: int) -> Iterator[dict[str, pa.Array]]:
    shard = pq.ParquetFile(path)
    names = shard.schema_arrow.names
    image_col = next((c for c in IMAGE_COLUMNS if c in names), None)
    if image_col is None:
        raise ValueError(
            f"shard {path} has no image column ({'/'.join(IMAGE_COLUMNS)}); the .parquet files "
            "of a webdataset folder hold only metadata: pass its .tar files"
        )
    sizes = [c for c in ("original_width", "original_height") if c in names]
    for batch in shard.iter_batches(batch_size=rows, columns=["url", "caption", image_col, *sizes]):
        batch = batch.filter(pc.is_valid(batch.column(image_col)))
        if not batch.num_rows:
            continue
        missing = pa.nulls(batch.num_rows, pa.int32())
        yield {
            "url": batch.column("url"),
            "caption": batch.column("caption"),
            "image": batch.column(image_col),
            "width": batch.column("original_width") if sizes else missing,
            "height": batch.column("original_height") if sizes else missing,
        }


def _tar_rows(path: Path, rows: int) -> Iterator[dict[str, list]]:
    """Samples of an img2dataset tar: `<key>.json` (url, caption, original size) beside
    `<key>.jpg|png|webp`."""
    samples: dict[str, dict[str, bytes]] = {}
    with tarfile.open(path, "r|*") as tar:
        for member in tar:
            key, _, ext = member.name.rpartition(".")
            data = tar.extractfile(member) if member.isfile() else None
            if data is not None:
                samples.setdefault(key, {})[ext] = data.read()
    columns: dict[str, list] = {name: [] for name in _TAR_COLUMNS}
    for files in samples.values():
        image = next((files[e] for e in IMAGE_COLUMNS if e in files), None)
        if image is None or "json" not in files:
            continue
        meta = json.loads(files["json"])
        columns["url"].append(meta["url"])
        columns["caption"].append(meta["caption"])
        columns["image"].append(image)
        columns["width"].append(meta.get("original_width"))
        columns["height"].append(meta.get("original_height"))
        if len(columns["url"]) == rows:
            yield columns
            columns = {name: [] for name in _TAR_COLUMNS}
    if columns["url"]:
        yield columns
