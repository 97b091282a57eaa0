"""The `build-anchors` flow: grow a LanceDB anchor table (the ASIF model) from a url list.

check the table's encoders (before any download) -> download (img2dataset, resumable) -> embed
(Ray Data) -> validate each batch (Great Expectations) -> commit or quarantine -> tag the
version -> record the build -> summary artifact -> event `asif.anchors.updated` (only when the
table changed). Progress is logged every few seconds and kept in the progress artifact
`build-anchors-progress`. Killed and re-run with the same arguments, it finishes the job
without losing or duplicating rows (see `asif.pipeline.build`), and marks the killed run
Crashed (see `asif.pipeline.session`). `asif build-anchors` runs this flow in its own process
(`run_here`): against PREFECT_API_URL, or else a temporary local server (Prefect's ephemeral
mode), no deployment or worker needed.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, runtime

from asif.pipeline.build import (
    DEFAULT_TABLE_URI,
    build_anchor_table,
    default_quarantine_dir,
    default_tag,
    default_work_dir,
)
from asif.pipeline.download import DownloadOptions
from asif.pipeline.embed import EmbedOptions
from asif.pipeline.progress import INTERVAL, ProgressSink, ProgressTracker, caller_sinks, shown_to
from asif.pipeline.session import build_session
from asif.pipeline.summary import BuildSummary
from asif.pipeline.url_list import UrlListOptions
from asif.store.location import TableLocation
from flows.console import prefect_console_quiet
from tasks.build_anchors import (
    TASK_STEPS,
    FlowProgress,
    anchors_updated_event,
    report_killed_build,
    send_logs_now,
    summary_artifact,
    temporary_server_pids,
)


@flow(name="build-anchors")
def build_anchors(
    url_list: str,
    table_uri: str = DEFAULT_TABLE_URI,
    table_name: str = "anchors",
    storage_options: dict[str, str] | None = None,
    work_dir: str | None = None,
    quarantine_dir: str | None = None,
    source: UrlListOptions = UrlListOptions(),
    download: DownloadOptions = DownloadOptions(),
    embed: EmbedOptions = EmbedOptions(),
    tag: str | None = None,
    progress_seconds: float = INTERVAL,
) -> dict[str, Any]:
    """Download, embed, validate and upsert the url list's pairs into the anchor table.

    `url_list`: parquet/csv/tsv of (url, caption) pairs, or a folder of images each with a
    same-stem `.txt` caption. `table_uri`: a folder or `s3://bucket/path`; `storage_options`
    default to `ASIF_STORAGE_OPTIONS` (JSON) and AWS_* variables of the process. `work_dir`
    (shards, resume ledger) defaults to `asif-data/work/<table_name>`, `quarantine_dir` to
    `asif-data/quarantine/<table_name>`. `source` (how to read the url list and which rows:
    `asif.pipeline.url_list.UrlListOptions`), `download` (img2dataset settings,
    `asif.pipeline.download.DownloadOptions`) and `embed` (encoders, batch sizes, Ray actors:
    `asif.pipeline.embed.EmbedOptions`) are objects; a key left out keeps its default. The new
    version is tagged `tag` (default `build-<UTC timestamp>`). Progress is logged every
    `progress_seconds`. Set RAY_ADDRESS (or
    `embed.ray_address`) to embed on a Ray cluster. Returns the counts (also published as
    artifact `build-anchors-summary`).
    """
    logger = get_run_logger()
    work_dir = work_dir or default_work_dir(table_name)
    try:
        with build_session(
            work_dir, flow_run_id=str(runtime.flow_run.id), guard=temporary_server_pids()
        ) as session:
            sinks = [FlowProgress(logger), *caller_sinks()]
            with ProgressTracker(sinks, interval=progress_seconds) as tracker:
                if session.stale is not None:
                    report_killed_build(session.stale, tracker.say)
                summary = build_anchor_table(
                    url_list,
                    TableLocation.from_env(table_uri, table_name, storage_options),
                    work_dir=work_dir,
                    quarantine_dir=quarantine_dir or default_quarantine_dir(table_name),
                    source=source,
                    download=download,
                    embed=embed,
                    tag=tag or default_tag(),
                    tracker=tracker,
                    steps=TASK_STEPS,
                )
    except Exception as exc:
        logger.error("build-anchors failed: %s: %s", type(exc).__name__, exc)
        send_logs_now()
        raise
    summary_artifact(summary)
    if summary.changed:
        anchors_updated_event(summary)
    logger.info(
        "table %s: version %d -> %d, %d rows (+%d new, %d updated, %d quarantined batches)",
        summary.dataset_uri,
        summary.version_before,
        summary.version,
        summary.rows,
        summary.totals.inserted,
        summary.totals.updated,
        summary.totals.quarantined_batches,
    )
    return summary.as_dict()


def run_here(sinks: tuple[ProgressSink, ...] = (), **parameters: Any) -> BuildSummary:
    """Run the flow in this process, as `asif build-anchors` does, its progress also shown to
    `sinks`; Prefect's own console lines are left out (they would repeat the progress; the
    run's logs are on the Prefect server). Errors raise as from a function."""
    with shown_to(*sinks), prefect_console_quiet():
        return BuildSummary.from_dict(build_anchors(**parameters))
