"""Tasks of the build-anchors flow: download, embed+commit, tag, summary artifact, event."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event

from asif.pipeline.build import (
    BuildSummary,
    EmbedTotals,
    embed_and_commit,
    fetch_pairs,
    open_anchor_table,
    summarize,
)
from asif.pipeline.download import DownloadOptions, DownloadStats
from asif.pipeline.embed import EmbedOptions
from asif.store.table import AnchorTable

SUMMARY_ARTIFACT_KEY = "build-anchors-summary"
UPDATED_EVENT = "asif.anchors.updated"


@task(name="download-pairs", retries=2, retry_delay_seconds=10, cache_policy=NO_CACHE)
def download_shards(url_list: str, work_dir: str, options: DownloadOptions) -> DownloadStats:
    """Download the url list's images (or read a folder's) into shards of `work_dir`; resumes."""
    stats = fetch_pairs(url_list, work_dir, options)
    get_run_logger().info(
        "%d pairs downloaded, %d failed, %d shard(s) (%d new) in %s",
        stats.succeeded,
        stats.failed,
        len(stats.shards),
        len(stats.new_shards),
        stats.output_dir,
    )
    return stats


@task(name="open-anchor-table", cache_policy=NO_CACHE)
def open_table(
    table_uri: str,
    table_name: str,
    storage_options: Mapping[str, str] | None,
    options: EmbedOptions,
) -> AnchorTable:
    """Open (or create) the anchor table; refuses a table made with other encoders."""
    table = open_anchor_table(
        table_uri, options, table_name=table_name, storage_options=storage_options
    )
    get_run_logger().info(
        "anchor table %r: version %d, %d rows", table.name, table.version, len(table)
    )
    return table


@task(name="embed-and-commit", retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)
def embed_commit(
    stats: DownloadStats,
    table: AnchorTable,
    version_before: int,
    quarantine_dir: str,
    options: EmbedOptions,
) -> BuildSummary:
    """Embed the shards not yet committed, validate each batch, commit or quarantine it."""
    totals: EmbedTotals = embed_and_commit(
        stats, table, options, quarantine_dir=quarantine_dir, progress=get_run_logger().info
    )
    return summarize(table, stats, totals, version_before)


@task(name="tag-version", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def tag_version(
    table_uri: str,
    table_name: str,
    storage_options: Mapping[str, str] | None,
    tag: str,
    version: int,
) -> None:
    """Point `tag` at `version` of the table."""
    AnchorTable.open(table_uri, table_name, storage_options).tag(tag, version)
    get_run_logger().info("tagged version %d of %s as %r", version, table_name, tag)


@task(name="summary-artifact", cache_policy=NO_CACHE)
def summary_artifact(summary: BuildSummary) -> str:
    """Publish the build's counts as the markdown artifact `build-anchors-summary`."""
    artifact_id = create_markdown_artifact(
        markdown=summary_markdown(summary),
        key=SUMMARY_ARTIFACT_KEY,
        description=f"build-anchors into {summary.dataset_uri}",
    )
    return str(artifact_id)


@task(name="anchors-updated-event", cache_policy=NO_CACHE)
def anchors_updated_event(summary: BuildSummary) -> str | None:
    """Emit `asif.anchors.updated` for the table (only call it when the table changed)."""
    event = emit_event(
        event=UPDATED_EVENT,
        resource={
            "prefect.resource.id": f"asif.anchors.{summary.table_name}",
            "prefect.resource.name": summary.table_name,
        },
        payload=event_payload(summary),
    )
    return None if event is None else str(event.id)


def event_payload(summary: BuildSummary) -> dict:
    """The payload of `asif.anchors.updated`."""
    return {
        "table_uri": summary.table_uri,
        "table_name": summary.table_name,
        "version": summary.version,
        "tag": summary.tag,
        "inserted": summary.totals.inserted,
        "updated": summary.totals.updated,
        "rows": summary.rows,
    }


def summary_markdown(summary: BuildSummary) -> str:
    """The build's counts as a markdown report."""
    t = summary.totals
    rows = [
        ("downloaded pairs (work dir)", summary.downloaded),
        ("failed downloads", summary.download_failed),
        ("new shards", summary.new_shards),
        ("shards already committed", t.skipped_shards),
        ("embedded rows", t.embedded),
        ("image decode failures", t.decode_failures),
        ("batches", t.batches),
        ("validated rows (committed)", t.validated_rows),
        ("quarantined batches", t.quarantined_batches),
        ("quarantined rows", t.quarantined_rows),
        ("inserted", t.inserted),
        ("updated", t.updated),
        ("table rows", summary.rows),
        ("table version", f"{summary.version_before} -> {summary.version}"),
        ("tag", summary.tag or "-"),
    ]
    lines = [
        f"# build-anchors: `{summary.dataset_uri}`",
        "",
        "| | |",
        "|---|---:|",
        *(f"| {name} | {value} |" for name, value in rows),
    ]
    if summary.failures_by_reason:
        lines += ["", "## Failures by reason", "", "| reason | pairs |", "|---|---:|"]
        lines += [f"| {_cell(r)} | {n} |" for r, n in summary.failures_by_reason.items()]
    if t.quarantine_paths:
        lines += ["", "## Quarantined batches", ""]
        lines += [f"- `{Path(p)}`" for p in t.quarantine_paths]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")[:200]
