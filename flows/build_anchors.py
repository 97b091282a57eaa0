"""The `build-anchors` flow: grow a LanceDB anchor table (the ASIF model) from a url list.

open the table (refusing other encoders before any download) -> download (img2dataset,
resumable) -> embed (Ray Data) -> validate each batch (Great Expectations) -> commit or
quarantine -> tag the version -> summary artifact -> event `asif.anchors.updated` (only when
the table changed). Killed and re-run with the same arguments, it finishes the job without
losing or duplicating rows (see `asif.pipeline.build`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prefect import flow, get_run_logger

from asif.pipeline.build import build_anchor_table
from asif.pipeline.download import DownloadOptions
from asif.pipeline.embed import EmbedOptions
from asif.store.location import TableLocation
from tasks.build_anchors import TASK_STEPS, anchors_updated_event, summary_artifact

DATA_DIR = "asif-data"


@flow(name="build-anchors")
def build_anchors(
    url_list: str,
    table_uri: str = f"{DATA_DIR}/lancedb",
    table_name: str = "anchors",
    storage_options: dict[str, str] | None = None,
    work_dir: str | None = None,
    quarantine_dir: str | None = None,
    download: DownloadOptions = DownloadOptions(),
    embed: EmbedOptions = EmbedOptions(),
    tag: str | None = None,
) -> dict[str, Any]:
    """Download, embed, validate and upsert the url list's pairs into the anchor table.

    `url_list`: parquet/csv/tsv with `url` and `caption` columns, or a folder of images each
    with a same-stem `.txt` caption. `table_uri`: a folder or `s3://bucket/path`;
    `storage_options` default to `ASIF_STORAGE_OPTIONS` (JSON) and AWS_* variables of the
    process. `work_dir` (shards, resume ledger) defaults to `asif-data/work/<table_name>`,
    `quarantine_dir` to `asif-data/quarantine/<table_name>`. `download` (img2dataset settings,
    `asif.pipeline.download.DownloadOptions`) and `embed` (encoders, batch sizes, Ray actors:
    `asif.pipeline.embed.EmbedOptions`) are objects; a key left out keeps its default. The new
    version is tagged `tag` (default `build-<UTC timestamp>`). Set RAY_ADDRESS (or
    `embed.ray_address`) to embed on a Ray cluster. Returns the counts (also published as
    artifact `build-anchors-summary`).
    """
    summary = build_anchor_table(
        url_list,
        TableLocation.from_env(table_uri, table_name, storage_options),
        work_dir=work_dir or f"{DATA_DIR}/work/{table_name}",
        quarantine_dir=quarantine_dir or f"{DATA_DIR}/quarantine/{table_name}",
        download=download,
        embed=embed,
        tag=tag or f"build-{datetime.now(UTC):%Y%m%dT%H%M%SZ}",
        steps=TASK_STEPS,
    )
    summary_artifact(summary)
    if summary.changed:
        anchors_updated_event(summary)
    get_run_logger().info(
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
