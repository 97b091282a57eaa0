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
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

import pyarrow as pa
import pyarrow.parquet as pq

from asif.pipeline.url_list import drop_blank_pairs, read_url_list

OutputFormat = Literal["parquet", "webdataset"]
ResizeMode = Literal["no", "border", "keep_ratio", "keep_ratio_largest", "center_crop"]
OUTPUT_FORMATS: tuple[str, ...] = get_args(OutputFormat)
RESIZE_MODES: tuple[str, ...] = get_args(ResizeMode)
SHARD_NAME = re.compile(r"^(\d+)(_stats\.json|\.parquet|\.tar)$")
_REPO_ROOT = Path(__file__).resolve().parents[2]
"""Put on the child's PYTHONPATH so `python -m asif.pipeline.download` finds this package."""


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
    """All finished shards of an output folder, plus what this call added or skipped.

    `skipped` counts input rows never attempted (no url, no caption), by reason; they count as
    failures. `new_shards` are the shard files this call wrote.
    """

    output_dir: Path
    output_format: str
    shards: list[ShardStats]
    new_shards: list[Path] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """Pairs attempted or skipped."""
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


@dataclass(frozen=True)
class DownloadOptions:
    """How img2dataset downloads, resizes and shards the images.

    `resize_mode` is img2dataset's ("keep_ratio": the smaller side becomes `image_size`);
    `timeout` (seconds) and `retries` apply to each url. Raises `ValueError` for a value out
    of range.
    """

    __pydantic_config__ = {"extra": "forbid"}  # flow parameter schema: no unknown keys

    output_format: OutputFormat = "parquet"
    image_size: int = 256
    resize_mode: ResizeMode = "keep_ratio"
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
    input_format: str | None = None,
    url_col: str = "url",
    caption_col: str = "caption",
    resume: bool = True,
) -> DownloadStats:
    """Download the list's images into shards of `output_dir`; failed urls are counted, not fatal.

    With `resume`, pairs already in finished shards are not downloaded again; without it, the
    folder's shards are deleted first. Rows without url or caption are skipped and counted.
    """
    pairs, blank = drop_blank_pairs(
        read_url_list(url_list, input_format=input_format, url_col=url_col, caption_col=caption_col)
    )
    skipped = Counter({"missing url or caption": blank})
    return download_table(pairs, output_dir, options, resume=resume, skipped=skipped)


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
    out = Path(output_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    _prepare_output(out, options.output_format, resume)
    pending = _new_pairs(pairs.select(["url", "caption"]), out)
    before = set(_finished_ids(out))
    if pending.num_rows:
        with tempfile.TemporaryDirectory(prefix="asif-urls-") as tmp:
            pending_file = Path(tmp) / "pending.parquet"
            pq.write_table(pending, pending_file)
            _run_img2dataset(
                url_list=str(pending_file),
                output_folder=str(out),
                input_format="parquet",
                url_col="url",
                caption_col="caption",
                output_format=options.output_format,
                image_size=options.image_size,
                resize_mode=options.resize_mode,
                processes_count=options.processes,
                thread_count=options.threads,
                number_sample_per_shard=options.samples_per_shard,
                timeout=options.timeout,
                retries=options.retries,
                incremental_mode="extend",
                enable_wandb=False,
            )
    shards = collect_stats(out).shards
    new = [s.path for s in shards if _shard_id(s.path) not in before]
    return DownloadStats(
        out, options.output_format, shards, new, {k: v for k, v in (skipped or {}).items() if v}
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


def _prepare_output(out: Path, output_format: str, resume: bool) -> None:
    """Check the folder's format; delete unfinished shards (all shards unless resuming)."""
    finished = set(_finished_ids(out)) if resume else set()
    existing = collect_stats(out).output_format if finished else output_format
    if existing != output_format:
        raise ValueError(f"{out} holds {existing} shards; pass output_format={existing!r}")
    for path in out.iterdir():
        if SHARD_NAME.match(path.name) and _shard_id(path) not in finished:
            path.unlink()
    shutil.rmtree(out / "_tmp", ignore_errors=True)


def _new_pairs(pairs: pa.Table, out: Path) -> pa.Table:
    """Distinct pairs of `pairs` that no finished shard of `out` holds."""
    pairs = pairs.group_by(["url", "caption"], use_threads=False).aggregate([])
    done_files = [out / f"{i:05d}.parquet" for i in sorted(_finished_ids(out))]
    if not done_files:
        return pairs
    done = pa.concat_tables(
        pq.read_table(f, columns=["url", "caption"]).cast(pairs.schema) for f in done_files
    )
    return pairs.join(done, keys=["url", "caption"], join_type="left anti", use_threads=False)


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
    result = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, check=False)
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
