"""Query batches mapped over one shared state (the model, the classifier, the embeddings),
in this process or on a Ray cluster, so a benchmark of any size is scored in bounded memory.

A batch function takes the shared state and a row range and returns per-row columns. Both
runners cut the same ranges, and a batch's result depends only on its rows, so the Ray run
gives exactly the local run's numbers. On Ray the shared state is put in the object store
once and every actor reads that copy (numpy arrays, the anchor matrix among them, are mapped
from shared memory, not copied per actor); the ranges are a Ray Data dataset over an actor
pool.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import numpy as np
from tqdm.auto import tqdm

Columns = dict[str, np.ndarray]
BatchFn = Callable[[Any, int, int], Columns]
"""fn(shared, start, stop) -> columns with one entry per row of [start, stop)."""

ROW = "row"
DEFAULT_BATCH = 512


class BatchRunner(Protocol):
    def map(
        self, fn: BatchFn, shared: Any, n: int, batch_size: int = DEFAULT_BATCH, desc: str = ""
    ) -> Columns:
        """fn over the ranges [0, b), [b, 2b), ... of n rows, columns joined in row order
        (n = 0: fn's columns over the empty range [0, 0), computed here)."""
        ...


def _ranges(n: int, batch_size: int) -> list[tuple[int, int]]:
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    return [(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]


def _empty(fn: BatchFn, shared: Any) -> Columns:
    """No rows: fn's columns over the empty range, so the caller finds its columns (with
    their dtypes and trailing shapes) as for any n."""
    return dict(fn(shared, 0, 0))


def _concatenated(parts: list[Columns]) -> Columns:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _joined(parts: list[Columns]) -> Columns:
    """The parts' columns in row order (Ray returns batches as they finish)."""
    joined = _concatenated(parts)
    order = np.argsort(joined.pop(ROW), kind="stable")
    return {k: v[order] for k, v in joined.items()}


def _collected(parts: Iterable[Columns], n: int, desc: str, progress: bool) -> Columns:
    """The parts as they come, counted on a progress bar if asked, joined in row order."""
    done = []
    with tqdm(total=n, desc=desc, unit="row", disable=not progress) as bar:
        for part in parts:
            done.append(part)
            bar.update(len(part[ROW]))
    return _joined(done)


def _with_rows(fn: BatchFn, shared: Any, start: int, stop: int) -> Columns:
    return {**fn(shared, start, stop), ROW: np.arange(start, stop)}


class LocalBatches:
    """The batches one after another in this process, with a progress bar if asked."""

    def __init__(self, progress: bool = False) -> None:
        self.progress = progress

    def map(
        self, fn: BatchFn, shared: Any, n: int, batch_size: int = DEFAULT_BATCH, desc: str = ""
    ) -> Columns:
        ranges = _ranges(n, batch_size)
        if not ranges:
            return _empty(fn, shared)
        parts = (_with_rows(fn, shared, start, stop) for start, stop in ranges)
        return _collected(parts, n, desc, self.progress)


class _BatchActor:
    """A Ray Data actor holding the shared state; called with one range per batch."""

    def __init__(self, fn: BatchFn, shared: Any) -> None:
        import ray

        self.fn = fn
        self.shared = ray.get(shared) if isinstance(shared, ray.ObjectRef) else shared

    def __call__(self, batch: Columns) -> Columns:
        return _concatenated(
            [
                _with_rows(self.fn, self.shared, int(s), int(e))
                for s, e in zip(batch["start"], batch["stop"], strict=True)
            ]
        )


class RayBatches:
    """The batches as a Ray Data dataset over `actors` actors (default: one per CPU of the
    cluster) that share one object-store copy of the state. Joins RAY_ADDRESS's cluster (or
    starts a local Ray) through `asif.pipeline.embed.init_ray`."""

    def __init__(self, actors: int | None = None, progress: bool = False) -> None:
        self.actors = actors
        self.progress = progress

    def map(
        self, fn: BatchFn, shared: Any, n: int, batch_size: int = DEFAULT_BATCH, desc: str = ""
    ) -> Columns:
        import ray
        import ray.data

        from asif.pipeline.embed import init_ray

        ranges = _ranges(n, batch_size)
        if not ranges:
            return _empty(fn, shared)
        init_ray()
        actors = self.actors or max(1, int(ray.cluster_resources().get("CPU", 1)))
        actors = min(actors, len(ranges))
        items = [{"start": s, "stop": e} for s, e in ranges]
        dataset = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
            _BatchActor,
            fn_constructor_args=(fn, ray.put(shared)),
            batch_size=1,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=actors),
        )
        parts = (
            {k: np.asarray(v) for k, v in part.items()}
            for part in dataset.iter_batches(batch_size=None, batch_format="numpy")
        )
        return _collected(parts, n, desc, self.progress)


def default_runner(progress: bool = False) -> BatchRunner:
    """Ray when RAY_ADDRESS names a cluster, else this process."""
    if os.environ.get("RAY_ADDRESS"):
        return RayBatches(progress=progress)
    return LocalBatches(progress)
