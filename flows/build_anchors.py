"""The `build-anchors` flow: grow a LanceDB anchor table (the ASIF model) from a url list.

download (img2dataset, resumable) -> embed (Ray Data) -> validate each batch (Great
Expectations) -> commit or quarantine -> tag the version -> summary artifact -> event
`asif.anchors.updated` (only when the table changed). Killed and re-run with the same
arguments, it finishes the job without losing or duplicating rows (see `asif.build`).
"""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import flow, get_run_logger

from asif.build import storage_options_from_env
from tasks.build_anchors import (
    anchors_updated_event,
    download,
    embed_commit,
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
    image_encoder: str = "efficientnet-lite2",
    text_encoder: str = "all-MiniLM-L6-v2",
    work_dir: str | None = None,
    quarantine_dir: str | None = None,
    processes: int = 1,
    threads: int = 16,
    samples_per_shard: int = 1000,
    image_size: int = 256,
    output_format: str = "parquet",
    timeout: int = 10,
    num_actors: int = 1,
    cpus_per_actor: float | None = None,
    batch_size: int = 64,
    rows_per_batch: int = 1024,
    tag: str | None = None,
) -> dict:
    """Download, embed, validate and upsert the url list's pairs into the anchor table.

    `url_list`: parquet/csv/tsv with `url` and `caption` columns. `table_uri`: a folder or
    `s3://bucket/path`; `storage_options` default to `ASIF_STORAGE_OPTIONS` (JSON) and AWS_*
    variables of the process. `work_dir` (shards, resume ledger) defaults to
    `asif-data/work/<table_name>`, `quarantine_dir` to `asif-data/quarantine/<table_name>`.
    The new version is tagged `tag` (default `build-<UTC timestamp>`). Set RAY_ADDRESS to
    embed on a Ray cluster; `cpus_per_actor` is each embedding actor's CPU reservation
    (default: see `asif.embed.iter_embedded_batches`). Returns the counts (also published as
    artifact `build-anchors-summary`).
    """
    logger = get_run_logger()
    storage_options = storage_options or storage_options_from_env()
    work_dir = work_dir or f"{DATA_DIR}/work/{table_name}"
    quarantine_dir = quarantine_dir or f"{DATA_DIR}/quarantine/{table_name}"
    tag = tag or f"build-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    options = {
        "processes": processes,
        "threads": threads,
        "samples_per_shard": samples_per_shard,
        "image_size": image_size,
        "output_format": output_format,
        "timeout": timeout,
    }
    stats = download(url_list, work_dir, options)
    summary = embed_commit(
        stats,
        table_uri,
        table_name,
        storage_options,
        image_encoder,
        text_encoder,
        quarantine_dir,
        batch_size,
        rows_per_batch,
        num_actors,
        cpus_per_actor,
    )
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
