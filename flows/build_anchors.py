"""The `build-anchors` flow: grow a LanceDB anchor table (the ASIF model) from a url list.

open the table (refusing other encoders before any download) -> download (img2dataset,
resumable) -> embed (Ray Data) -> validate each batch (Great Expectations) -> commit or
quarantine -> tag the version -> summary artifact -> event `asif.anchors.updated` (only when
the table changed). Killed and re-run with the same arguments, it finishes the job without
losing or duplicating rows (see `asif.pipeline.build`).
"""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import flow, get_run_logger

from asif.pipeline.build import storage_options_from_env
from asif.pipeline.download import DownloadOptions
from asif.pipeline.embed import EmbedOptions
from tasks.build_anchors import (
    anchors_updated_event,
    download_shards,
    embed_commit,
    open_table,
    summary_artifact,
    tag_version,
)

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
) -> dict:
    """Download, embed, validate and upsert the url list's pairs into the anchor table.

    `url_list`: parquet/csv/tsv with `url` and `caption` columns, or a folder of images each
    with a same-stem `.txt` caption. `table_uri`: a folder or
    `s3://bucket/path`; `storage_options` default to `ASIF_STORAGE_OPTIONS` (JSON) and AWS_*
    variables of the process. `work_dir` (shards, resume ledger) defaults to
    `asif-data/work/<table_name>`, `quarantine_dir` to `asif-data/quarantine/<table_name>`.
    `download` (img2dataset settings, `asif.pipeline.download.DownloadOptions`) and `embed` (encoders,
    batch sizes, Ray actors: `asif.pipeline.embed.EmbedOptions`) are objects; a key left out keeps its
    default. The new version is tagged `tag` (default `build-<UTC timestamp>`). Set
    RAY_ADDRESS (or `embed.ray_address`) to embed on a Ray cluster. Returns the counts (also
    published as artifact `build-anchors-summary`).
    """
    logger = get_run_logger()
    storage_options = storage_options or storage_options_from_env()
    work_dir = work_dir or f"{DATA_DIR}/work/{table_name}"
    quarantine_dir = quarantine_dir or f"{DATA_DIR}/quarantine/{table_name}"
    tag = tag or f"build-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    table = open_table(table_uri, table_name, storage_options, embed)  # wrong encoders: stop now
    version_before = table.version
    stats = download_shards(url_list, work_dir, download)
    summary = embed_commit(stats, table, version_before, quarantine_dir, embed)
    if summary.changed:
        tag_version(table_uri, table_name, storage_options, tag, summary.version)
        summary.tag = tag
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
