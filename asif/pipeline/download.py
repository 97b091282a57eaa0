"""Download (url, caption) lists into image shards with img2dataset, resumably.

img2dataset runs in a child process (`python -m asif.pipeline.download`): its Python API spawns
workers that re-import `__main__`, imports wandb at top level and may pull a `dataclasses`
backport, none of which a caller (Prefect task, test) should have to care about.

Resume: a shard is finished once img2dataset wrote its `NNNNN_stats.json`. Each call drops the
pairs already in finished shards from the list, deletes unfinished shards left by a killed run,
and downloads the rest into new shards numbered after the last one (img2dataset's
`incremental_mode="extend"`). So re-running with the same list downloads nothing, and a longer
list downloads only its new pairs; img2dataset's own "incremental" mode, which skips shards by
position in the list, would silently skip new rows that land in an already finished shard.

Planning (which pairs to download) streams: the list is read in chunks, its selected usable
pairs go to a candidates file on disk while only a 128-bit hash of each pair stays in memory;
one sort of those hashes (with those of the finished shards' pairs) finds the first occurrence
of each pair not yet downloaded, and a second pass over the candidates writes img2dataset's
pending list. Memory: 16 bytes per candidate and per finished pair, about 60 bytes each
during the sort, plus one chunk (see tests/pipeline/test_planning_memory.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from asif.pipeline.subset import Selection, Skipped, SubsetRecord
from asif.pipeline.url_list import PARQUET_ROWS, UrlListError, UrlListOptions

OutputFormat = Literal["parquet", "webdataset"]
ResizeMode = Literal["no", "border", "keep_ratio", "keep_ratio_largest", "center_crop"]
OUTPUT_FORMATS: tuple[str, ...] = get_args(OutputFormat)
RESIZE_MODES: tuple[str, ...] = get_args(ResizeMode)
SHARD_NAME = re.compile(r"^(\d+)(_stats\.json|\.parquet|\.tar)$")
_REPO_ROOT = Path(__file__).resolve().parents[2]
"""Put on the child's PYTHONPATH so `python -m asif.pipeline.download` finds this package."""
PLAN_DIR = "_plan"
"""The output folder's subfolder for the planning files (removed after each call)."""
PAIRS_SCHEMA = pa.schema([("url", pa.string()), ("caption", pa.string())])
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShardStats:
    """One finished shard, from img2dataset's `NNNNN_stats.json`."""

    path: Path
    count: int
    succeeded: int
    failed_to_download: int
    failed_to_resize: int
    reasons: dict[str, int]

    @property
    def failed(self) -> int:
        """Pairs of this shard without an image."""
        return self.failed_to_download + self.failed_to_resize


@dataclass(frozen=True)
class DownloadStats:
    """All finished shards of an output folder, plus what this call added or left out.

    The shard counts (`total`, `succeeded`, ...) are the folder's, old shards included; the
    `new_*` properties count only the shards this call wrote. `skipped` counts the selected
    rows never attempted (unparseable lines, no url or caption), by reason; they count as
    failures; `skipped_examples` holds the first few locations of each ("line 18").
    `duplicates` counts selected pairs repeated in the list (downloaded once),
    `already_downloaded` those found in finished shards; `subset` records the rows taken.
    """

    output_dir: Path
    output_format: str
    shards: list[ShardStats]
    new_shards: list[Path] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    skipped_examples: dict[str, list[str]] = field(default_factory=dict)
    duplicates: int = 0
    already_downloaded: int = 0
    subset: SubsetRecord | None = None

    @property
    def total(self) -> int:
        """Pairs attempted (in any shard of the folder) or skipped."""
        return sum(s.count for s in self.shards) + sum(self.skipped.values())

    @property
    def succeeded(self) -> int:
        """Pairs with an image in a shard."""
        return sum(s.succeeded for s in self.shards)

    @property
    def failed(self) -> int:
        """Pairs without an image: download or decode failures and skipped rows."""
        return self.total - self.succeeded

    @property
    def failed_to_download(self) -> int:
        """Pairs whose url did not answer with a body (HTTP errors, timeouts, ...)."""
        return sum(s.failed_to_download for s in self.shards)

    @property
    def failed_to_resize(self) -> int:
        """Pairs whose body was not a decodable image."""
        return sum(s.failed_to_resize for s in self.shards)

    @property
    def new_attempted(self) -> int:
        """Pairs this call sent to img2dataset (those in its new shards)."""
        return sum(s.count for s in self._new())

    @property
    def new_succeeded(self) -> int:
        """Pairs of this call's new shards with an image."""
        return sum(s.succeeded for s in self._new())

    @property
    def new_failed(self) -> int:
        """Pairs of this call's new shards without an image (skipped rows not included)."""
        return sum(s.failed for s in self._new())

    @property
    def failures_by_reason(self) -> dict[str, int]:
        """Failure counts by error message (memory addresses removed so messages group)."""
        reasons: Counter[str] = Counter(self.skipped)
        for shard in self.shards:
            reasons.update({k: v for k, v in shard.reasons.items() if k != "success"})
        return dict(reasons.most_common())

    @property
    def shard_files(self) -> list[Path]:
        """The finished shard files (`.parquet` or `.tar`), in shard order."""
        return [s.path for s in self.shards]

    def _new(self) -> list[ShardStats]:
        new = set(self.new_shards)
        return [s for s in self.shards if s.path in new]


@dataclass(frozen=True)
class Plan:
    """What a download call sends to img2dataset (`pending`, a parquet list) and leaves out."""

    pending: Path
    pending_pairs: int
    duplicates: int
    already_downloaded: int
    skipped: Skipped
    subset: SubsetRecord | None = None


@dataclass(frozen=True)
class DownloadOptions:
    """How img2dataset downloads, resizes and shards the images.

    `resize_mode` is img2dataset's ("keep_ratio": the smaller side becomes `image_size`);
    with `resize_only_if_bigger` smaller images are kept at their size: upscaling stores
    bigger files and resamples twice (the encoder resizes again), which costs accuracy.
    `timeout` (seconds) and `retries` apply to each url. Raises `ValueError` for a value out
    of range.
    """

    __pydantic_config__ = {"extra": "forbid"}  # flow parameter schema: no unknown keys

    output_format: OutputFormat = "parquet"
    image_size: int = 256
    resize_mode: ResizeMode = "keep_ratio"
    resize_only_if_bigger: bool = True
    processes: int = 1
    threads: int = 16
    samples_per_shard: int = 1000
    timeout: int = 10
    retries: int = 0

    def __post_init__(self) -> None:
        if self.output_format not in OUTPUT_FORMATS:
            raise ValueError(
                f"output_format must be one of {OUTPUT_FORMATS}, not {self.output_format!r}"
            )
        if self.resize_mode not in RESIZE_MODES:
            raise ValueError(f"resize_mode must be one of {RESIZE_MODES}, not {self.resize_mode!r}")
        for name in ("image_size", "processes", "threads", "samples_per_shard", "timeout"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)}")
        if self.retries < 0:
            raise ValueError(f"retries must be at least 0, not {self.retries}")


def download_pairs(
    url_list: str | Path,
    output_dir: str | Path,
    options: DownloadOptions = DownloadOptions(),
    *,
    source: UrlListOptions = UrlListOptions(),
    resume: bool = True,
) -> DownloadStats:
    """Download the list's selected images into shards of `output_dir`; failures are counted.

    `source` says how to read the list and which rows to take. With `resume`, pairs already in
    finished shards are not downloaded again; without it, the folder's shards are deleted
    first. Unusable rows are skipped and counted by reason. `UrlListError` (a user error, no
    retry helps): an unreadable list or missing column (raised before the folder is touched),
    a subset that selects no row, or selected rows none of which is usable.
    """
    selection = Selection(url_list, source)
    out = _prepare_output(output_dir, options.output_format, resume)
    try:
        return _fetch(out, options, _plan(selection, out))
    finally:
        shutil.rmtree(out / PLAN_DIR, ignore_errors=True)


def plan_pairs(
    url_list: str | Path,
    output_dir: str | Path,
    source: UrlListOptions = UrlListOptions(),
) -> Plan:
    """The pending list `download_pairs` would send to img2dataset, in `<output_dir>/_plan`.

    Streams in bounded memory (module docstring); the folder's shards are left as they are.
    """
    selection = Selection(url_list, source)
    return _plan(selection, Path(output_dir).resolve())


def download_table(
    pairs: pa.Table,
    output_dir: str | Path,
    options: DownloadOptions = DownloadOptions(),
    *,
    resume: bool = True,
    skipped: Mapping[str, int] | None = None,
) -> DownloadStats:
    """`download_pairs` for an in-memory table of valid rows with `url` and `caption` columns.

    `skipped` counts rows the caller left out, by reason (reported as failures).
    """
    out = _prepare_output(output_dir, options.output_format, resume)
    pending = _PendingList(_plan_folder(out))
    try:
        for batch in pairs.select(["url", "caption"]).to_batches(PARQUET_ROWS):
            pending.add(pa.Table.from_batches([batch]).cast(PAIRS_SCHEMA))
        n, duplicates, done = pending.write(_done_hashes(out))
        left_out = Skipped({k: v for k, v in (skipped or {}).items() if v}, {})
        return _fetch(out, options, Plan(pending.path, n, duplicates, done, left_out))
    finally:
        shutil.rmtree(out / PLAN_DIR, ignore_errors=True)


def pair_hashes(pairs: pa.Table) -> np.ndarray:
    """A 128-bit blake2b digest of each (url, caption) row as an (n, 2) uint64 array.

    16 bytes stand for a pair in memory; a collision among 10^9 pairs has odds below 10^-20.
    """
    urls = pc.fill_null(pairs["url"], "").cast(pa.binary()).to_pylist()
    captions = pc.fill_null(pairs["caption"], "").cast(pa.binary()).to_pylist()
    blake2b = hashlib.blake2b
    digests = b"".join(
        blake2b(len(u).to_bytes(8, "little") + u + c, digest_size=16).digest()
        for u, c in zip(urls, captions, strict=True)
    )
    return np.frombuffer(digests, dtype=np.uint64).reshape(-1, 2)


def _plan(selection: Selection, out: Path) -> Plan:
    """Stream the selected usable pairs into the pending list (module docstring)."""
    pending = _PendingList(_plan_folder(out))
    for candidates in selection.candidates():
        pending.add(candidates.pairs, None if selection.exact else candidates.rows)
    n, duplicates, done = pending.write(_done_hashes(out), selection.keep)
    skipped, subset = selection.skipped, selection.record()
    if not subset.rows_selected:
        raise UrlListError(
            f"url list {selection.reader.path}: no row selected ({subset.how}) of its "
            f"{subset.rows_read} data rows"
        )
    if not n + duplicates + done:
        raise UrlListError(
            f"url list {selection.reader.path}: none of the {subset.rows_selected} selected rows "
            f"is usable: {skipped.describe()}"
        )
    _log.info(
        "%s: %d rows read, %d selected (%s); %d new pairs to download, %d already downloaded, "
        "%d repeated",
        subset.file_name,
        subset.rows_read,
        subset.rows_selected,
        subset.how,
        n,
        done,
        duplicates,
    )
    if skipped.counts:
        _log.warning("%s: rows skipped: %s", subset.file_name, skipped.describe())
    return Plan(pending.path, n, duplicates, done, skipped, subset)


def _plan_folder(out: Path) -> Path:
    folder = out / PLAN_DIR
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


class _PendingList:
    """The pending list, in two passes over the candidates.

    `add` (pass 1) appends candidate pairs to a parquet file and keeps their hashes; `write`
    (pass 2) writes the first occurrence of each selected pair that no finished shard holds.
    """

    def __init__(self, folder: Path) -> None:
        self.path = folder / "pending.parquet"
        self._candidates = folder / "candidates.parquet"
        self._writer = pq.ParquetWriter(self._candidates, PAIRS_SCHEMA)
        self._hashes: list[np.ndarray] = []
        self._rows: list[np.ndarray] = []

    def add(self, pairs: pa.Table, rows: np.ndarray | None = None) -> None:
        """Candidate pairs, with their rows if the final choice among them is made later."""
        self._writer.write_table(pairs)
        self._hashes.append(pair_hashes(pairs))
        if rows is not None:
            self._rows.append(rows)

    def write(
        self, done: np.ndarray, keep: Callable[[np.ndarray], np.ndarray] | None = None
    ) -> tuple[int, int, int]:
        """Write the pending list: (pairs written, repeats, pairs already in `done`).

        `keep` picks the selected candidates from their rows (a sample is final only now).
        """
        self._writer.close()
        candidates = pq.ParquetFile(self._candidates)
        n_done, parts = len(done), [done]
        del done
        selected = None
        if keep is not None and self._rows:
            selected = np.flatnonzero(keep(np.concatenate(self._rows)))
            parts.append(np.concatenate(self._hashes)[selected])
        else:
            parts += self._hashes
        self._hashes = []
        first, done_rows = _first_new(parts, n_done)
        mask = np.zeros(candidates.metadata.num_rows, dtype=bool)
        mask[first if selected is None else selected[first]] = True
        with pq.ParquetWriter(self.path, PAIRS_SCHEMA) as writer:
            offset = 0
            for group in range(candidates.num_row_groups):
                part = candidates.read_row_group(group)
                kept = mask[offset : offset + part.num_rows]
                offset += part.num_rows
                if kept.any():
                    writer.write_table(part.filter(pa.array(kept)))
        self._candidates.unlink()
        chosen = len(mask) if selected is None else len(selected)
        return len(first), chosen - len(first) - done_rows, done_rows


def _first_new(parts: list[np.ndarray], n_done: int) -> tuple[np.ndarray, int]:
    """Of the pair hashes `parts` (n x 2 uint64 arrays, consumed: the list is emptied), the
    positions after the first `n_done` that are a pair's first occurrence and not among the
    first `n_done` (in order), and how many positions after them repeat one of those.

    One stable sort by the first word puts equal pairs in a run, earlier positions first; a run
    starts wherever the whole hash changes. (Pairs sharing a first word but interleaved could
    only split a run: a repeat kept, never a pair lost.)
    """
    hashes = np.concatenate([np.empty((0, 2), np.uint64), *parts])
    parts.clear()
    order = np.argsort(hashes[:, 0], kind="stable")
    high, low = hashes[order, 0], hashes[order, 1]
    del hashes
    starts = np.ones(len(order), dtype=bool)
    starts[1:] = (high[1:] != high[:-1]) | (low[1:] != low[:-1])
    del high, low
    candidate = order >= n_done
    first = np.sort(order[starts & candidate] - n_done)
    if not n_done:
        return first, 0
    run_is_done = order[starts] < n_done
    del order
    run = np.cumsum(starts, dtype=np.int32 if len(starts) < 2**31 else np.int64) - 1
    return first, int((candidate & run_is_done[run]).sum())


def _done_hashes(out: Path) -> np.ndarray:
    """The pair hashes of every row of the finished shards (their `.parquet` metadata files)."""
    files = [out / f"{i:05d}.parquet" for i in sorted(_finished_ids(out))]
    hashes = np.empty((sum(pq.read_metadata(f).num_rows for f in files), 2), dtype=np.uint64)
    row = 0
    for path in files:
        with pq.ParquetFile(path) as shard:
            for batch in shard.iter_batches(PARQUET_ROWS, columns=["url", "caption"]):
                hashes[row : row + batch.num_rows] = pair_hashes(pa.Table.from_batches([batch]))
                row += batch.num_rows
    return hashes


def _fetch(out: Path, options: DownloadOptions, plan: Plan) -> DownloadStats:
    """Run img2dataset on the plan's pending list; the folder's stats after it."""
    before = set(_finished_ids(out))
    if plan.pending_pairs:
        _run_img2dataset(
            url_list=str(plan.pending),
            output_folder=str(out),
            input_format="parquet",
            url_col="url",
            caption_col="caption",
            output_format=options.output_format,
            image_size=options.image_size,
            resize_mode=options.resize_mode,
            resize_only_if_bigger=options.resize_only_if_bigger,
            processes_count=options.processes,
            thread_count=options.threads,
            number_sample_per_shard=options.samples_per_shard,
            timeout=options.timeout,
            retries=options.retries,
            incremental_mode="extend",
            enable_wandb=False,
        )
    shards = collect_stats(out).shards
    return DownloadStats(
        out,
        options.output_format,
        shards,
        new_shards=[s.path for s in shards if _shard_id(s.path) not in before],
        skipped=plan.skipped.counts,
        skipped_examples=plan.skipped.examples,
        duplicates=plan.duplicates,
        already_downloaded=plan.already_downloaded,
        subset=plan.subset,
    )


def collect_stats(output_dir: str | Path) -> DownloadStats:
    """The finished shards of an img2dataset output folder and their counts."""
    out = Path(output_dir)
    shards = []
    for shard_id, stats_file in sorted(_finished_ids(out).items()):
        raw = json.loads(stats_file.read_text())
        reasons: Counter[str] = Counter()
        for reason, n in raw["status_dict"].items():
            reasons[_normalise_reason(reason)] += n
        tar = out / f"{shard_id:05d}.tar"
        shards.append(
            ShardStats(
                path=tar if tar.exists() else out / f"{shard_id:05d}.parquet",
                count=raw["count"],
                succeeded=raw["successes"],
                failed_to_download=raw["failed_to_download"],
                failed_to_resize=raw["failed_to_resize"],
                reasons=dict(reasons),
            )
        )
    fmt = "webdataset" if any(s.path.suffix == ".tar" for s in shards) else "parquet"
    return DownloadStats(out, fmt, shards)


def _shard_id(path: Path) -> int:
    return int(path.name.split("_")[0].split(".")[0])


def _finished_ids(out: Path) -> dict[int, Path]:
    """Shard id -> stats file, for the shards img2dataset finished."""
    return {_shard_id(p): p for p in out.glob("*_stats.json") if SHARD_NAME.match(p.name)}


def _prepare_output(output_dir: str | Path, output_format: str, resume: bool) -> Path:
    """The folder, checked for its format; unfinished shards (all unless resuming) deleted."""
    out = Path(output_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    finished = set(_finished_ids(out)) if resume else set()
    existing = collect_stats(out).output_format if finished else output_format
    if existing != output_format:
        raise ValueError(f"{out} holds {existing} shards; pass output_format={existing!r}")
    for path in out.iterdir():
        if SHARD_NAME.match(path.name) and _shard_id(path) not in finished:
            path.unlink()
    shutil.rmtree(out / "_tmp", ignore_errors=True)
    shutil.rmtree(out / PLAN_DIR, ignore_errors=True)
    return out


def _normalise_reason(reason: str) -> str:
    return re.sub(r" at 0x[0-9a-f]+", "", reason)


def _run_img2dataset(**kwargs: object) -> None:
    pythonpath = [str(_REPO_ROOT), os.environ.get("PYTHONPATH", "")]
    env = {
        **os.environ,
        "NO_ALBUMENTATIONS_UPDATE": "1",
        "WANDB_MODE": "disabled",
        "PYTHONPATH": os.pathsep.join(filter(None, pythonpath)),
    }
    cmd = [sys.executable, "-m", "asif.pipeline.download", json.dumps(kwargs)]
    # its report goes to stderr: stdout is the caller's (`asif build-anchors --json`)
    result = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, stdout=2, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"img2dataset failed with exit code {result.returncode} (output above)")


def _child_main(argv: list[str]) -> None:
    """Run img2dataset.download with the JSON keyword arguments in argv[0]."""
    from img2dataset import download

    download(**json.loads(argv[0]))


if __name__ in ("__main__", "__mp_main__"):
    # The img2dataset child and the workers it spawns (which re-import this module as
    # `__mp_main__`): img2dataset only imports torch (via webdataset) and ray optionally, and
    # each takes seconds per process.
    for _optional in ("torch", "ray", "pyspark"):
        sys.modules.setdefault(_optional, None)  # type: ignore[arg-type]  # None: "not installed"

if __name__ == "__main__":
    _child_main(sys.argv[1:])
