"""Build or grow an anchor table from a url list: download -> embed -> validate -> commit.

`build_anchor_table` is the one build sequence: check the table's encoders (before anything is
downloaded), fetch the pairs, embed and commit the new shards, tag the version and record the
build (`asif.pipeline.ledger`) if the table changed. Its steps are plain functions, passed as
`BuildSteps`; `flows/build_anchors.py` passes the same functions wrapped in Prefect tasks, and
`asif build-anchors` runs them as they are.

No table version before the first commit: a missing table is created only when the first
embedded batch is committed, so a build that fails before that (a bad url list, a failed
download) leaves the table, or its absence, as it was.

Resume: downloads resume through `asif.pipeline.download` (finished shards are kept, unfinished
ones redone). Embedding resumes per shard: once every image row of a shard has been committed
or quarantined, the shard is recorded in the work folder's ledger (`asif.pipeline.ledger`,
keyed by table) and later runs skip it. A run killed mid-shard re-embeds that shard; its rows
already in the table are upserted by content id (`anchor_id(url, caption)`), so nothing is
duplicated.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from asif.errors import TableNotFoundError
from asif.pipeline.commit import CommitResult, commit_batch
from asif.pipeline.download import DownloadOptions, DownloadStats, download_pairs
from asif.pipeline.embed import EmbeddedBatch, EmbedOptions, iter_embedded_batches
from asif.pipeline.folders import pairs_from_folder
from asif.pipeline.ledger import ShardLedger, record_build
from asif.pipeline.progress import ProgressTracker, ShardPoller
from asif.pipeline.summary import BuildSummary, EmbedTotals, absolute_uri, summarize
from asif.pipeline.url_list import UrlListOptions
from asif.store.batch import check_encoders
from asif.store.location import TableLocation
from asif.store.schema import SHARD, anchor_schema
from asif.store.table import AnchorTable

DATA_DIR = "asif-data"
DEFAULT_TABLE_URI = f"{DATA_DIR}/lancedb"


def default_work_dir(table_name: str) -> str:
    """Where a table's downloaded shards and resume ledger go by default."""
    return f"{DATA_DIR}/work/{table_name}"


def default_quarantine_dir(table_name: str) -> str:
    """Where a table's batches that failed validation go by default."""
    return f"{DATA_DIR}/quarantine/{table_name}"


def default_tag() -> str:
    """``build-<UTC timestamp>``: the tag of a build's version unless one is given."""
    return f"build-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"


def fetch_pairs(
    url_list: str | Path,
    work_dir: str | Path,
    options: DownloadOptions = DownloadOptions(),
    source: UrlListOptions = UrlListOptions(),
) -> DownloadStats:
    """Shards in `work_dir` from a url list file (read with `source`) or a folder of captioned
    images (which `source` does not apply to: `ValueError` unless it is the default)."""
    if not Path(url_list).is_dir():
        return download_pairs(url_list, work_dir, options, source=source)
    if source != UrlListOptions():
        raise ValueError(f"url list options ({source}) do not apply to the folder {url_list}")
    return pairs_from_folder(url_list, work_dir, options)


@lru_cache(maxsize=8)
def encoder_identity(image_encoder: str, text_encoder: str) -> tuple[str, int, str, int]:
    """(image name, image dim, text name, text dim) of two encoder specs (loads them once)."""
    from asif.encoders import load_image_encoder, load_text_encoder

    image = load_image_encoder(image_encoder, device="cpu")
    text = load_text_encoder(text_encoder, device="cpu")
    return image.name, image.dim, text.name, text.dim


@dataclass
class AnchorTarget:
    """The table a build writes: the existing one (its encoders checked) or, while there is
    none, the one `writable` creates for the first commit."""

    location: TableLocation
    image_encoder: str
    image_dim: int
    text_encoder: str
    text_dim: int
    table: AnchorTable | None = None

    @property
    def version(self) -> int:
        """The table's version; 0 while it does not exist."""
        return self.table.version if self.table is not None else 0

    @property
    def rows(self) -> int:
        """The table's rows; 0 while it does not exist."""
        return len(self.table) if self.table is not None else 0

    @property
    def dataset_uri(self) -> str:
        """The Lance dataset's uri (where it will be while it does not exist)."""
        if self.table is not None:
            return self.table.dataset_uri
        return f"{absolute_uri(self.location.uri).rstrip('/')}/{self.location.name}.lance"

    def writable(self) -> AnchorTable:
        """The table, created empty (its first version) if it does not exist yet, and given
        the columns of this release (`AnchorTable.upgrade`) if an earlier one made it."""
        if self.table is None:
            self.table = self.location.create_or_open(
                image_encoder=self.image_encoder,
                text_encoder=self.text_encoder,
                image_dim=self.image_dim,
                text_dim=self.text_dim,
            )
        self.table.upgrade()
        return self.table


def open_anchor_table(location: TableLocation, options: EmbedOptions) -> AnchorTarget:
    """The build's target for the encoders of `options`, writing nothing; an existing table
    made with other encoders raises `EncoderMismatchError` (or `DimensionMismatchError`)."""
    target = AnchorTarget(location, *encoder_identity(options.image_encoder, options.text_encoder))
    try:
        table = location.open()
    except TableNotFoundError:
        return target
    wanted = anchor_schema(
        target.image_dim, target.text_dim, target.image_encoder, target.text_encoder
    )
    check_encoders(
        wanted, table.schema, where=f"anchor table {table.dataset_uri}", what="the requested model"
    )
    target.table = table
    return target


def fetch_with_progress(
    url_list: str | Path,
    work_dir: str | Path,
    source: UrlListOptions,
    options: DownloadOptions,
    tracker: ProgressTracker,
) -> DownloadStats:
    """`fetch_pairs`, reporting this run's counts to `tracker` while img2dataset works."""
    tracker.phase("download", poll=ShardPoller(work_dir, tracker))
    stats = fetch_pairs(url_list, work_dir, options, source)
    tried = stats.new_succeeded + stats.new_failed
    tracker.set(
        done=tried, total=tried, downloaded=stats.new_succeeded, download_failed=stats.new_failed
    )
    tracker.say(
        f"downloaded {stats.new_succeeded:,} pairs, {stats.new_failed:,} failed, in "
        f"{len(stats.new_shards)} new shard(s); the work folder holds {stats.succeeded:,} pairs "
        f"in {len(stats.shards)} shard(s)"
    )
    return stats


def embed_and_commit(
    stats: DownloadStats,
    target: AnchorTarget,
    options: EmbedOptions = EmbedOptions(),
    *,
    quarantine_dir: str | Path,
    tracker: ProgressTracker | None = None,
) -> EmbedTotals:
    """Embed the shards not yet in the ledger and commit each batch through `commit_batch`.

    Rows are counted as each actor batch arrives and committed as `iter_embedded_batches`
    groups them (`options.rows_per_batch` rows, or fewer after `options.commit_seconds`).
    Quarantined batches are counted and skipped, never
    fatal; a shard enters the ledger once all its image rows were committed or quarantined
    (shards without images at once). After a run that committed rows the id index is rebuilt
    (`AnchorTable.index_ids`), so the service finds an anchor by id without a scan.
    """
    tracker = tracker or ProgressTracker()
    ledger = ShardLedger(stats.output_dir, target.dataset_uri)
    if target.rows == 0:
        ledger.reset()
    expected = {s.path.name: s.succeeded for s in stats.shards}
    totals = EmbedTotals(skipped_shards=len(set(expected) & ledger.done))
    ledger.mark(name for name, n in expected.items() if n == 0)
    pending = [s for s in stats.shards if s.path.name not in ledger.done]
    tracker.phase("embed", total=sum(s.succeeded for s in pending))
    if not pending:
        tracker.say(f"nothing to embed: all {len(expected)} shard(s) already committed")
        return totals
    tracker.say(f"embedding {len(pending)} shard(s); {totals.skipped_shards} already committed")
    _quiet_ray()
    seen: Counter[str] = Counter()
    for batch in iter_embedded_batches(
        [s.path for s in pending], options, on_block=lambda block: _count(tracker, block)
    ):
        if batch.table.num_rows:
            result = commit_batch(target.writable(), batch.table, quarantine_dir=quarantine_dir)
            _add(totals, batch, result)
            _report(tracker, totals, result)
        seen.update(_shard_names(batch.table))
        seen.update(_shard_names(batch.failed))
        totals.decode_failures += batch.failed.num_rows
        ledger.mark(name for name, n in seen.items() if n >= expected.get(name, n + 1))
    if totals.committed_batches:
        version = target.writable().index_ids()
        tracker.say(f"indexed the ids of {target.rows:,} rows -> version {version}")
    return totals


Open = Callable[[TableLocation, EmbedOptions], AnchorTarget]
Fetch = Callable[
    [str | Path, str | Path, UrlListOptions, DownloadOptions, ProgressTracker], DownloadStats
]
EmbedCommit = Callable[
    [DownloadStats, AnchorTarget, EmbedOptions, str | Path, ProgressTracker], EmbedTotals
]


@dataclass(frozen=True)
class BuildSteps:
    """The steps `build_anchor_table` runs, in this order (`PLAIN_STEPS`: as plain calls)."""

    open_table: Open
    fetch: Fetch
    embed_commit: EmbedCommit
    tag: Callable[[AnchorTable, str, int], None]
    record: Callable[[TableLocation, BuildSummary], None]


def _embed_commit(
    stats: DownloadStats,
    target: AnchorTarget,
    options: EmbedOptions,
    quarantine_dir: str | Path,
    tracker: ProgressTracker,
) -> EmbedTotals:
    return embed_and_commit(stats, target, options, quarantine_dir=quarantine_dir, tracker=tracker)


def _tag(table: AnchorTable, name: str, version: int) -> None:
    table.tag(name, version)


def _record(location: TableLocation, summary: BuildSummary) -> None:
    record_build(location, summary)


PLAIN_STEPS = BuildSteps(open_anchor_table, fetch_with_progress, _embed_commit, _tag, _record)


def build_anchor_table(
    url_list: str | Path,
    location: TableLocation,
    *,
    work_dir: str | Path,
    quarantine_dir: str | Path,
    source: UrlListOptions = UrlListOptions(),
    download: DownloadOptions = DownloadOptions(),
    embed: EmbedOptions = EmbedOptions(),
    tag: str | None = None,
    tracker: ProgressTracker | None = None,
    steps: BuildSteps = PLAIN_STEPS,
) -> BuildSummary:
    """Download the url list (read with `source`; or read a folder of captioned images) into
    `work_dir`, embed new shards, validate and commit them to the table at `location`.

    If the build changed the table, its final version is tagged `tag` (if given) and the build
    is recorded in the `builds` table beside it. Progress goes to `tracker`.
    """
    tracker = tracker or ProgressTracker()
    target = steps.open_table(location, embed)  # other encoders: stop before any download
    version_before = target.version
    start = time.perf_counter()
    stats = steps.fetch(url_list, work_dir, source, download, tracker)
    fetched = time.perf_counter()
    totals = steps.embed_commit(stats, target, embed, quarantine_dir, tracker)
    summary = summarize(
        target,
        str(url_list),
        stats,
        totals,
        version_before,
        download_seconds=fetched - start,
        embed_seconds=time.perf_counter() - fetched,
    )
    if summary.changed:
        if tag:
            steps.tag(target.writable(), tag, summary.version)
            summary.tag = tag
        steps.record(location, summary)
    tracker.phase("done")
    return summary


def _quiet_ray() -> None:
    """Silence Ray output that reads like failure but is none.

    Ray Data's bars count blocks and tasks, not pairs (`Total Progress: 916/3664` for 3,000
    rows): the tracker reports instead, and the notice that the bars are off is dropped. Each
    process Ray starts is forked from this one, where lancedb and lance warn that they are not
    fork-safe; the child execs Ray at once and never uses them.
    """
    from ray.data import DataContext

    warnings.filterwarnings("ignore", "lancedb fork support is experimental", RuntimeWarning)
    warnings.filterwarnings("ignore", "lance is not fork-safe", UserWarning)
    context = DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)


def _count(tracker: ProgressTracker, block: EmbeddedBatch) -> None:
    ok, failed = block.table.num_rows, block.failed.num_rows
    tracker.add(done=ok + failed, embedded=ok, decode_failed=failed)


def _shard_names(rows: pa.Table) -> Counter[str]:
    if rows.num_rows == 0 or SHARD not in rows.column_names:
        return Counter()
    counts = pc.value_counts(rows[SHARD]).to_pylist()
    return Counter({c["values"]: c["counts"] for c in counts})


def _add(totals: EmbedTotals, batch: EmbeddedBatch, result: CommitResult) -> None:
    totals.batches += 1
    totals.validate_seconds += result.validate_seconds
    totals.write_seconds += result.write_seconds
    totals.embedded += batch.table.num_rows
    if result.committed:
        totals.committed_batches += 1
        totals.validated_rows += result.rows
        totals.inserted += result.inserted
        totals.updated += result.updated
    else:
        totals.quarantined_batches += 1
        totals.quarantined_rows += result.rows
        totals.quarantine_paths.append(str(result.quarantine_path))


def _report(tracker: ProgressTracker, totals: EmbedTotals, result: CommitResult) -> None:
    if result.committed:
        tracker.add(committed=result.rows)
        tracker.say(
            f"committed batch {totals.batches}: {result.rows} rows "
            f"(+{result.inserted} new, {result.updated} updated) -> version {result.version}"
        )
    else:
        tracker.add(quarantined=result.rows)
        tracker.say(
            f"quarantined batch {totals.batches} ({result.rows} rows) at "
            f"{result.quarantine_path}: {result.report.summary()}"
        )
