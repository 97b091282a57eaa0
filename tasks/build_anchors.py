"""Tasks of the build-anchors flow: the build's steps (`asif.pipeline.build`) as Prefect tasks,
with retries and logs, plus its progress, summary artifact, `asif.anchors.updated` event, and
the Prefect side of a killed build (its flow run, the temporary server)."""

from __future__ import annotations

from collections.abc import Callable
from logging import Logger, LoggerAdapter
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect import get_run_logger, runtime, task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.events import emit_event
from prefect.exceptions import ObjectNotFound
from prefect.logging.handlers import APILogWorker
from prefect.settings import get_current_settings
from prefect.states import Crashed, State

from asif.errors import AsifError
from asif.pipeline.build import (
    AnchorTarget,
    BuildSteps,
    embed_and_commit,
    fetch_with_progress,
    open_anchor_table,
)
from asif.pipeline.download import DownloadOptions, DownloadStats
from asif.pipeline.embed import EmbedOptions
from asif.pipeline.ledger import record_build
from asif.pipeline.progress import PHASES, ProgressSnapshot, ProgressTracker
from asif.pipeline.session import BuildOwner
from asif.pipeline.summary import BuildSummary, EmbedTotals, event_payload, summary_markdown
from asif.pipeline.url_list import UrlListOptions
from asif.store.location import TableLocation
from asif.store.table import AnchorTable

SUMMARY_ARTIFACT_KEY = "build-anchors-summary"
PROGRESS_ARTIFACT_KEY = "build-anchors-progress"
UPDATED_EVENT = "asif.anchors.updated"
NOT_RETRIED = (
    AsifError,  # bad input: url list, encoders, table, a busy work folder
    ValueError,  # an option out of range
    TypeError,
    FileNotFoundError,
    NotADirectoryError,
    IsADirectoryError,
    PermissionError,
)
"""Errors a retry cannot fix: the same input fails the same way."""

RunLogger = Logger | LoggerAdapter[Any]


def retry_unless_bad_input(task: object, task_run: object, state: State) -> bool:
    """`retry_condition_fn` of the steps: retry a failure, unless it is one of `NOT_RETRIED`."""
    try:
        state.result()
    except NOT_RETRIED:
        return False
    except Exception:
        return True
    return True


@task(
    name="open-anchor-table",
    retries=2,
    retry_delay_seconds=5,
    retry_condition_fn=retry_unless_bad_input,
    cache_policy=NO_CACHE,
)
def open_table(location: TableLocation, options: EmbedOptions) -> AnchorTarget:
    """Check the anchor table's encoders (writing nothing; a missing table is made later)."""
    target = open_anchor_table(location, options)
    logger = get_run_logger()
    if target.table is None:
        logger.info("no table %r yet: the first commit creates it", target.dataset_uri)
    else:
        logger.info(
            "table %r: version %d, %d rows", target.dataset_uri, target.version, target.rows
        )
    return target


@task(
    name="download-pairs",
    retries=2,
    retry_delay_seconds=10,
    retry_condition_fn=retry_unless_bad_input,
    cache_policy=NO_CACHE,
)
def download_shards(
    url_list: str | Path,
    work_dir: str | Path,
    source: UrlListOptions,
    options: DownloadOptions,
    tracker: ProgressTracker,
) -> DownloadStats:
    """Download the url list's images (or read a folder's) into shards of `work_dir`; resumes."""
    return fetch_with_progress(url_list, work_dir, source, options, tracker)


@task(
    name="embed-and-commit",
    retries=1,
    retry_delay_seconds=5,
    retry_condition_fn=retry_unless_bad_input,
    cache_policy=NO_CACHE,
)
def embed_commit(
    stats: DownloadStats,
    target: AnchorTarget,
    options: EmbedOptions,
    quarantine_dir: str | Path,
    tracker: ProgressTracker,
) -> EmbedTotals:
    """Embed the shards not yet committed, validate each batch, commit or quarantine it."""
    return embed_and_commit(stats, target, options, quarantine_dir=quarantine_dir, tracker=tracker)


@task(name="tag-version", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def tag_version(table: AnchorTable, tag: str, version: int) -> None:
    """Point `tag` at `version` of the table."""
    table.tag(tag, version)
    get_run_logger().info("tagged version %d of %s as %r", version, table.name, tag)


@task(name="record-build", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def record(location: TableLocation, summary: BuildSummary) -> None:
    """Record the build (versions, url list subset, counts) in the `builds` table."""
    record_build(location, summary, flow_run_id=runtime.flow_run.id)


TASK_STEPS = BuildSteps(open_table, download_shards, embed_commit, tag_version, record)
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


class FlowProgress:
    """A `ProgressSink` for a flow run: a log line per report, and the progress artifact
    `build-anchors-progress` (the whole build, 0-100 %, described by the same line)."""

    def __init__(self, logger: RunLogger) -> None:
        self.logger = logger
        self.artifact_id: UUID = create_progress_artifact(  # type: ignore[assignment]  # sync
            0.0, key=PROGRESS_ARTIFACT_KEY, description="build-anchors: starting"
        )

    def show(self, snapshot: ProgressSnapshot) -> None:
        if snapshot.phase in PHASES:
            self.logger.info(snapshot.line())
        update_progress_artifact(self.artifact_id, snapshot.percent, description=snapshot.line())

    def say(self, message: str) -> None:
        self.logger.info(message)

    def close(self) -> None:
        pass


def report_killed_build(stale: BuildOwner, say: Callable[[str], None]) -> None:
    """Say that the work folder's previous build was killed, and mark its flow run Crashed:
    a killed process cannot report its own end, so the run would stay Running."""
    say(
        f"the previous build of this work folder ({stale.describe()}) was killed before it "
        "finished; this run resumes its work"
    )
    if stale.flow_run_id is None or stale.flow_run_id == str(runtime.flow_run.id):
        return
    with get_client(sync_client=True) as client:
        try:
            run = client.read_flow_run(UUID(stale.flow_run_id))
        except ObjectNotFound:
            say(
                f"its flow run {stale.flow_run_id} is not on this Prefect server, which cannot "
                "mark it Crashed"
            )
            return
        if run.state is not None and run.state.is_final():
            return
        message = f"its process ({stale.describe()}) was killed; found by {runtime.flow_run.id}"
        client.set_flow_run_state(run.id, Crashed(message=message), force=True)
    say(f"marked flow run {run.name} ({run.id}) Crashed")


def temporary_server_pids() -> list[int]:
    """The pid of the temporary Prefect server this process started (no `PREFECT_API_URL`):
    a killed build must not leave it running."""
    if get_current_settings().api.url:
        return []
    from prefect.server.api.server import SubprocessASGIServer

    process = SubprocessASGIServer().server_process  # the singleton the flow engine started
    return [process.pid] if process is not None and process.poll() is None else []


def send_logs_now() -> None:
    """Send the run's queued log lines now, before its final state: they go in batches every
    few seconds, and `prefect deployment run --watch` stops reading at the final state, so a
    run failing right after its last lines would show only "finished in state 'Failed'"."""
    APILogWorker.drain_all(timeout=5, at_exit=False)
