"""Tasks of the build-anchors flow: the build's steps (`asif.pipeline.build`) as Prefect tasks,
with retries and logs, plus the summary artifact and the `asif.anchors.updated` event."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event

from asif.pipeline.build import BuildSteps, embed_and_commit, fetch_pairs, open_anchor_table
from asif.pipeline.download import DownloadOptions, DownloadStats
from asif.pipeline.embed import EmbedOptions
from asif.pipeline.summary import BuildSummary, EmbedTotals, event_payload, summary_markdown
from asif.store.location import TableLocation
from asif.store.table import AnchorTable

SUMMARY_ARTIFACT_KEY = "build-anchors-summary"
UPDATED_EVENT = "asif.anchors.updated"


@task(name="open-anchor-table", cache_policy=NO_CACHE)
def open_table(location: TableLocation, options: EmbedOptions) -> AnchorTable:
    """Open (or create) the anchor table; refuses a table made with other encoders."""
    table = open_anchor_table(location, options)
    get_run_logger().info(
        "anchor table %r: version %d, %d rows", table.name, table.version, len(table)
    )
    return table


@task(name="download-pairs", retries=2, retry_delay_seconds=10, cache_policy=NO_CACHE)
def download_shards(
    url_list: str | Path, work_dir: str | Path, options: DownloadOptions
) -> DownloadStats:
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


@task(name="embed-and-commit", retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)
def embed_commit(
    stats: DownloadStats, table: AnchorTable, options: EmbedOptions, quarantine_dir: str | Path
) -> EmbedTotals:
    """Embed the shards not yet committed, validate each batch, commit or quarantine it."""
    return embed_and_commit(
        stats, table, options, quarantine_dir=quarantine_dir, progress=get_run_logger().info
    )


@task(name="tag-version", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def tag_version(table: AnchorTable, tag: str, version: int) -> None:
    """Point `tag` at `version` of the table."""
    table.tag(tag, version)
    get_run_logger().info("tagged version %d of %s as %r", version, table.name, tag)


TASK_STEPS = BuildSteps(
    open_table=open_table, fetch=download_shards, embed_commit=embed_commit, tag=tag_version
)
"""The build's steps as the tasks above, for `build_anchor_table` inside the flow."""


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
