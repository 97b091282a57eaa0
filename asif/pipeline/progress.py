"""Live progress of a build: pairs downloaded, embedded, committed and failed, pairs/s and ETA.

Neither img2dataset (a child process) nor Ray (actors) reports pair by pair to the build, so a
`ProgressTracker` holds the counts the build can see (download shards as img2dataset finishes
them, polled from the work folder; embedded and committed rows as batches arrive) and a
heartbeat thread shows them to its sinks every `interval` seconds: a long phase never goes
silent, and the totals are this run's, never the work folder's.
"""

from __future__ import annotations

import contextvars
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import IO, Protocol

import pyarrow as pa
from tqdm import tqdm

INTERVAL = 5.0
"""Seconds between two progress reports."""
PHASES = ("download", "embed")
"""The phases with counts; a build then enters "done" (100 %)."""


@dataclass(frozen=True)
class ProgressSnapshot:
    """The counts of a build in flight. `done` and `total` count the current phase's items
    (download: pairs tried; embed: downloaded images embedded or failed); `total` is None while
    unknown. The other counts are this run's, across phases."""

    phase: str
    elapsed: float
    done: int = 0
    total: int | None = None
    downloaded: int = 0
    download_failed: int = 0
    embedded: int = 0
    decode_failed: int = 0
    committed: int = 0
    quarantined: int = 0

    @property
    def failed(self) -> int:
        """Pairs lost so far: failed downloads, undecodable images, quarantined rows."""
        return self.download_failed + self.decode_failed + self.quarantined

    @property
    def rate(self) -> float | None:
        """Items of the current phase per second (None before the first)."""
        return self.done / self.elapsed if self.done and self.elapsed > 0 else None

    @property
    def eta(self) -> float | None:
        """Seconds left in the current phase at the current rate (None if unknown)."""
        if self.total is None or self.rate is None:
            return None
        return max(self.total - self.done, 0) / self.rate

    @property
    def percent(self) -> float:
        """The whole build's progress, 0 to 100: download the first half, embed the second."""
        if self.phase not in PHASES:
            return 100.0
        share = min(self.done / self.total, 1.0) if self.total else 0.0
        return 50.0 * (PHASES.index(self.phase) + share)

    def line(self) -> str:
        """One readable line, e.g. ``embed 512/1,920 | downloaded 1,920 | embedded 512 | ...``."""
        of = f"/{self.total:,}" if self.total is not None else ""
        rate = f"{self.rate:,.1f} pairs/s" if self.rate is not None else "- pairs/s"
        eta = f"ETA {timedelta(seconds=round(self.eta))}" if self.eta is not None else "ETA -"
        return (
            f"{self.phase} {self.done:,}{of} | downloaded {self.downloaded:,} | embedded "
            f"{self.embedded:,} | committed {self.committed:,} | failed {self.failed:,} | "
            f"{rate} | {eta}"
        )


class ProgressSink(Protocol):
    """Where progress goes: a terminal, a log, a Prefect artifact."""

    def show(self, snapshot: ProgressSnapshot) -> None:
        """Show the counts (called every few seconds and at each phase change)."""

    def say(self, message: str) -> None:
        """Show one event of the build (a committed batch, a quarantined one)."""

    def close(self) -> None:
        """The build ended."""


_CALLER_SINKS: contextvars.ContextVar[tuple[ProgressSink, ...]] = contextvars.ContextVar(
    "asif_caller_progress_sinks", default=()
)


@contextmanager
def shown_to(*sinks: ProgressSink) -> Iterator[None]:
    """Builds run inside the block (a flow called as a function) also show their progress to
    `sinks`: how `asif build-anchors` puts the flow's progress on its terminal."""
    token = _CALLER_SINKS.set(_CALLER_SINKS.get() + sinks)
    try:
        yield
    finally:
        _CALLER_SINKS.reset(token)


def caller_sinks() -> tuple[ProgressSink, ...]:
    """The sinks of the enclosing `shown_to` blocks."""
    return _CALLER_SINKS.get()


class ProgressTracker:
    """Counts of a build, shown to `sinks` every `interval` seconds while it is entered.

    Thread-safe: the build updates it, the heartbeat thread reads it (and runs the current
    phase's `poll`, which updates it from outside evidence such as finished shard files).
    """

    def __init__(
        self,
        sinks: Sequence[ProgressSink] = (),
        *,
        interval: float = INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sinks = list(sinks)
        self.interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._show_lock = threading.Lock()  # one report at a time: polls keep state
        self._started = clock()
        self._snapshot = ProgressSnapshot("start", 0.0)
        self._poll: Callable[[], None] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def phase(
        self, name: str, total: int | None = None, poll: Callable[[], None] | None = None
    ) -> None:
        """Start a phase of `total` items (None: unknown); `poll` runs before each report."""
        with self._lock:
            self._started = self._clock()
            self._snapshot = replace(self._snapshot, phase=name, elapsed=0.0, done=0, total=total)
            self._poll = poll
        self._show()

    def add(self, **counts: int) -> None:
        """Add to counts, e.g. ``add(done=64, embedded=62, decode_failed=2)``."""
        with self._lock:
            s = self._snapshot
            self._snapshot = replace(s, **{k: getattr(s, k) + v for k, v in counts.items()})

    def set(self, **values: int | None) -> None:
        """Set counts, e.g. ``set(done=1000, total=3000, downloaded=640, download_failed=360)``."""
        with self._lock:
            self._snapshot = replace(self._snapshot, **values)  # type: ignore[arg-type]

    def snapshot(self) -> ProgressSnapshot:
        """The counts now."""
        with self._lock:
            return replace(self._snapshot, elapsed=self._clock() - self._started)

    def say(self, message: str) -> None:
        """Pass one message to every sink."""
        for sink in self.sinks:
            sink.say(message)

    def __enter__(self) -> ProgressTracker:
        # In this thread's context: sinks may need it (Prefect's settings and run context).
        context = contextvars.copy_context()
        self._thread = threading.Thread(
            target=context.run, args=(self._beat,), name="build-progress", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        for sink in self.sinks:
            sink.close()

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            self._show()

    def _show(self) -> None:
        with self._show_lock:
            if self._poll is not None:
                self._poll()
            snapshot = self.snapshot()
            for sink in self.sinks:
                sink.show(snapshot)


class ShardPoller:
    """This run's download counts, from the shards img2dataset finishes in `work_dir`.

    A finished shard has an ``NNNNN_stats.json`` (its count, successes); shards finished before
    the run are left out. img2dataset splits the pending pairs into ``_tmp/NNNNN.feather`` input
    shards up front and deletes each once its shard is done, so finished counts plus the rows of
    the remaining input shards are the run's total.
    """

    def __init__(self, work_dir: str | Path, tracker: ProgressTracker) -> None:
        self.work_dir = Path(work_dir)
        self.tracker = tracker
        self.before = set(self._stats_files())
        self._counted: dict[str, tuple[int, int]] = {}
        self._inputs: dict[str, int] = {}

    def __call__(self) -> None:
        for name in self._stats_files() - self.before - set(self._counted):
            try:
                stats = json.loads((self.work_dir / name).read_text())
            except (OSError, ValueError):  # being written: next time
                continue
            self._counted[name] = (int(stats["count"]), int(stats["successes"]))
        count = sum(c for c, _ in self._counted.values())
        ok = sum(s for _, s in self._counted.values())
        total = count + self._remaining_inputs()
        self.tracker.set(done=count, total=total or None, downloaded=ok, download_failed=count - ok)

    def _stats_files(self) -> set[str]:
        try:
            return {e.name for e in os.scandir(self.work_dir) if e.name.endswith("_stats.json")}
        except OSError:
            return set()

    def _remaining_inputs(self) -> int:
        tmp = self.work_dir / "_tmp"
        try:
            names = {e.name for e in os.scandir(tmp) if e.name.endswith(".feather")}
        except OSError:
            return 0
        for name in names - set(self._inputs):
            try:
                with pa.memory_map(str(tmp / name)) as source:
                    self._inputs[name] = pa.ipc.open_file(source).read_all().num_rows
            except (OSError, pa.ArrowInvalid):  # being written: next time
                continue
        return sum(n for name, n in self._inputs.items() if name in names)


class TerminalProgress:
    """Progress on a terminal: a tqdm bar per phase on a TTY, else a plain line per report."""

    def __init__(self, stream: IO[str] | None = None, *, bars: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.bars = self.stream.isatty() if bars is None else bars
        self._bar: tqdm | None = None
        self._phase: str | None = None

    def show(self, snapshot: ProgressSnapshot) -> None:
        if snapshot.phase not in PHASES:
            return
        if not self.bars:
            print(snapshot.line(), file=self.stream, flush=True)
            return
        if self._bar is None or snapshot.phase != self._phase:
            self.close()
            self._phase = snapshot.phase
            self._bar = tqdm(
                desc=snapshot.phase,
                total=snapshot.total,
                file=self.stream,
                bar_format="{desc} {percentage:3.0f}%|{bar:20}| {postfix}",
                dynamic_ncols=True,
            )
        self._bar.total = snapshot.total
        self._bar.n = snapshot.done
        self._bar.set_postfix_str(snapshot.line().partition(" | ")[2], refresh=True)

    def say(self, message: str) -> None:
        if self._bar is not None:
            tqdm.write(message, file=self.stream)
        else:
            print(message, file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
