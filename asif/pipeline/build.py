"""Build or grow an anchor table from a url list: download -> embed -> validate -> commit.

`build_anchor_table` is the one build sequence: open the table (refusing other encoders before
anything is downloaded), fetch the pairs, embed and commit the new shards, tag the version if
it changed. Its steps are plain functions, passed as `BuildSteps`; `flows/build_anchors.py`
passes the same functions wrapped in Prefect tasks.

Resume: downloads resume through `asif.pipeline.download` (finished shards are kept, unfinished
ones redone). Embedding resumes per shard: once every image row of a shard has been committed
or quarantined, the shard is recorded in the work folder's ledger (`asif.pipeline.ledger`,
keyed by table) and later runs skip it. A run killed mid-shard re-embeds that shard; its rows
already in the table are upserted by content id (`anchor_id(url, caption)`), so nothing is
duplicated.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from asif.pipeline.commit import CommitResult, commit_batch
from asif.pipeline.download import DownloadOptions, DownloadStats, download_pairs
from asif.pipeline.embed import EmbeddedBatch, EmbedOptions, iter_embedded_batches
from asif.pipeline.folders import pairs_from_folder
from asif.pipeline.ledger import ShardLedger
from asif.pipeline.summary import BuildSummary, EmbedTotals, summarize
from asif.store.location import TableLocation
from asif.store.schema import SHARD
from asif.store.table import AnchorTable

Progress = Callable[[str], None]


def fetch_pairs(
    source: str | Path, work_dir: str | Path, options: DownloadOptions = DownloadOptions()
) -> DownloadStats:
    """Shards in `work_dir` from a url list file or a folder of captioned images."""
    if Path(source).is_dir():
        return pairs_from_folder(source, work_dir, options)
    return download_pairs(source, work_dir, options)


@lru_cache(maxsize=8)
def encoder_identity(image_encoder: str, text_encoder: str) -> tuple[str, int, str, int]:
    """(image name, image dim, text name, text dim) of two encoder specs (loads them once)."""
    from asif.encoders import load_image_encoder, load_text_encoder

    image = load_image_encoder(image_encoder, device="cpu")
    text = load_text_encoder(text_encoder, device="cpu")
    return image.name, image.dim, text.name, text.dim


def open_anchor_table(location: TableLocation, options: EmbedOptions) -> AnchorTable:
    """Open (or create) the anchor table for the encoders of `options`; refuses other encoders."""
    image_name, image_dim, text_name, text_dim = encoder_identity(
        options.image_encoder, options.text_encoder
    )
    return location.create_or_open(
        image_encoder=image_name, text_encoder=text_name, image_dim=image_dim, text_dim=text_dim
    )


def embed_and_commit(
    stats: DownloadStats,
    table: AnchorTable,
    options: EmbedOptions = EmbedOptions(),
    *,
    quarantine_dir: str | Path,
    progress: Progress | None = None,
) -> EmbedTotals:
    """Embed the shards not yet in the ledger and commit each batch through `commit_batch`.

    Quarantined batches are counted and skipped, never fatal; a shard enters the ledger once
    all its image rows were committed or quarantined (shards without images at once).
    """
    say = progress or _quiet
    ledger = ShardLedger(stats.output_dir, table.dataset_uri)
    if len(table) == 0:
        ledger.reset()
    expected = {s.path.name: s.succeeded for s in stats.shards}
    totals = EmbedTotals(skipped_shards=len(set(expected) & ledger.done))
    ledger.mark(name for name, n in expected.items() if n == 0)
    pending = [s.path for s in stats.shards if s.path.name not in ledger.done]
    if not pending:
        say(f"nothing to embed: all {len(expected)} shard(s) already committed to the table")
        return totals
    say(f"embedding {len(pending)} shard(s); {totals.skipped_shards} already committed")
    seen: Counter[str] = Counter()
    for batch in iter_embedded_batches(pending, options):
        result = commit_batch(table, batch.table, quarantine_dir=quarantine_dir)
        _add(totals, batch, result)
        seen.update(_shard_names(batch.table))
        seen.update(_shard_names(batch.failed))
        ledger.mark(name for name, n in seen.items() if n >= expected.get(name, n + 1))
        if result.committed:
            say(
                f"committed batch {totals.batches}: {result.rows} rows "
                f"(+{result.inserted} new, {result.updated} updated) -> version {result.version}"
            )
        else:
            say(
                f"quarantined batch {totals.batches} ({result.rows} rows) at "
                f"{result.quarantine_path}: {result.report.summary()}"
            )
    return totals


@dataclass(frozen=True)
class BuildSteps:
    """The steps `build_anchor_table` runs, in this order (see `plain_steps`)."""

    open_table: Callable[[TableLocation, EmbedOptions], AnchorTable]
    fetch: Callable[[str | Path, str | Path, DownloadOptions], DownloadStats]
    embed_commit: Callable[[DownloadStats, AnchorTable, EmbedOptions, str | Path], EmbedTotals]
    tag: Callable[[AnchorTable, str, int], None]


def plain_steps(progress: Progress | None = None) -> BuildSteps:
    """The steps as plain calls, reporting to `progress`."""
    say = progress or _quiet

    def fetch(source: str | Path, work_dir: str | Path, options: DownloadOptions) -> DownloadStats:
        stats = fetch_pairs(source, work_dir, options)
        say(
            f"downloaded {stats.succeeded} pairs, {stats.failed} failed, "
            f"{len(stats.shards)} shard(s)"
        )
        return stats

    def embed_commit(
        stats: DownloadStats, table: AnchorTable, options: EmbedOptions, quarantine_dir: str | Path
    ) -> EmbedTotals:
        return embed_and_commit(stats, table, options, quarantine_dir=quarantine_dir, progress=say)

    def tag(table: AnchorTable, name: str, version: int) -> None:
        table.tag(name, version)

    return BuildSteps(open_anchor_table, fetch, embed_commit, tag)


def build_anchor_table(
    url_list: str | Path,
    location: TableLocation,
    *,
    work_dir: str | Path,
    quarantine_dir: str | Path,
    download: DownloadOptions = DownloadOptions(),
    embed: EmbedOptions = EmbedOptions(),
    tag: str | None = None,
    progress: Progress | None = None,
    steps: BuildSteps | None = None,
) -> BuildSummary:
    """Download the url list (or read a folder of captioned images) into `work_dir`, embed new
    shards, validate and commit them to the table at `location`.

    With `tag`, the final version is tagged if the build changed the table. `steps` default to
    `plain_steps(progress)`.
    """
    steps = steps or plain_steps(progress)
    table = steps.open_table(location, embed)  # other encoders: stop before any download
    version_before = table.version
    stats = steps.fetch(url_list, work_dir, download)
    totals = steps.embed_commit(stats, table, embed, quarantine_dir)
    summary = summarize(table, stats, totals, version_before)
    if tag and summary.changed:
        steps.tag(table, tag, summary.version)
        summary.tag = tag
    return summary


def _quiet(_message: str) -> None:
    pass


def _shard_names(rows: pa.Table) -> Counter[str]:
    if rows.num_rows == 0 or SHARD not in rows.column_names:
        return Counter()
    counts = pc.value_counts(rows[SHARD]).to_pylist()
    return Counter({c["values"]: c["counts"] for c in counts})


def _add(totals: EmbedTotals, batch: EmbeddedBatch, result: CommitResult) -> None:
    totals.batches += 1
    totals.embedded += batch.table.num_rows
    totals.decode_failures += batch.failed.num_rows
    if result.committed:
        totals.committed_batches += 1
        totals.validated_rows += result.rows
        totals.inserted += result.inserted
        totals.updated += result.updated
    else:
        totals.quarantined_batches += 1
        totals.quarantined_rows += result.rows
        totals.quarantine_paths.append(str(result.quarantine_path))
