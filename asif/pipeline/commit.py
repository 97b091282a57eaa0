"""The gate in front of the anchor table: a validated batch is upserted, a bad one quarantined.

`commit_batch` validates a batch (`asif.pipeline.validation`) and upserts it; a batch that fails
validation or does not fit the table's schema is written to a new quarantine folder
(``batch.parquet`` + ``report.json``) and the call *returns* ``CommitResult(committed=False,
...)``, leaving the table exactly as it was, so a pipeline can count quarantined batches and
carry on. Pass ``raise_on_failure=True`` to get a `ValidationFailedError` (carrying the report
and the quarantine path) instead. A batch whose metadata names other encoders than the table's
is a configuration error, not bad data: it raises `EncoderMismatchError` and is not quarantined
(embeddings of the wrong dimension are quarantined like any other bad rows).

A zero-row batch is committed as a no-op (no new table version).
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from asif.errors import DimensionMismatchError, SchemaMismatchError, ValidationFailedError
from asif.files import staged_folder
from asif.pipeline.validation import ValidationReport, jsonable, validate_anchor_batch
from asif.store.table import AnchorTable


def quarantine_batch(
    batch: pa.Table,
    report: ValidationReport,
    quarantine_dir: str | Path,
    *,
    context: dict[str, Any] | None = None,
) -> Path:
    """Write the batch (``batch.parquet``) and report (``report.json``) to a new folder.

    The folder is ``quarantine_dir/<UTC time>-<random>`` and appears only once both files are
    written; `context` (e.g. the source shard or table uri) is stored in the JSON next to the
    report. Returns the folder.
    """
    now = datetime.now(UTC)
    folder = Path(quarantine_dir) / f"{now.strftime('%Y%m%dT%H%M%S.%fZ')}-{uuid.uuid4().hex[:8]}"
    payload = {"quarantined_at": now.isoformat(), "context": context or {}, **report.as_json()}
    with staged_folder(folder) as staging:
        pq.write_table(batch, staging / "batch.parquet")
        (staging / "report.json").write_text(json.dumps(jsonable(payload), indent=2))
    return folder


@dataclass(frozen=True)
class CommitResult:
    """What `commit_batch` did: committed (with counts and version) or quarantined, and the
    seconds it spent validating and writing (the upsert, or the quarantine folder)."""

    committed: bool
    rows: int
    inserted: int
    updated: int
    version: int
    report: ValidationReport
    quarantine_path: Path | None = None
    validate_seconds: float = 0.0
    write_seconds: float = 0.0


def commit_batch(
    table: AnchorTable,
    batch: pa.Table,
    *,
    quarantine_dir: str | Path,
    norm_tolerance: float = 1e-3,
    raise_on_failure: bool = False,
    context: dict[str, Any] | None = None,
) -> CommitResult:
    """Validate `batch` against `table`'s dims, then upsert it, or quarantine it untouched.

    Returns ``committed=False`` with the quarantine folder when the batch fails validation or
    does not fit the schema (the table keeps its version and rows); with
    ``raise_on_failure=True`` raises `ValidationFailedError` instead. Raises
    `EncoderMismatchError` if the batch's metadata names other encoders than the table's (a
    configuration error; nothing is quarantined). Wrong dimensions are bad data: quarantined.
    """
    table.check_encoders(batch, dims=False)  # before validation: a wrong encoder is no bad row
    start = time.perf_counter()
    ctx = {"table": table.dataset_uri, "table_version": table.version, **(context or {})}
    try:
        report = validate_anchor_batch(
            batch, image_dim=table.image_dim, text_dim=table.text_dim, norm_tolerance=norm_tolerance
        )
    except SchemaMismatchError as e:  # e.g. an embedding column that is not a list
        report = ValidationReport.failure(f"schema: {e}", batch.num_rows)
    validated = time.perf_counter()
    if report.success:
        try:
            done = table.upsert(batch)  # conforms the batch, refusing a misfit before any write
        except (SchemaMismatchError, DimensionMismatchError) as e:
            report = ValidationReport.failure(f"schema: {e}", batch.num_rows)
        else:
            return CommitResult(
                committed=True,
                rows=batch.num_rows,
                inserted=done.inserted,
                updated=done.updated,
                version=done.version,
                report=report,
                validate_seconds=validated - start,
                write_seconds=time.perf_counter() - validated,
            )
    path = quarantine_batch(batch, report, quarantine_dir, context=ctx)
    if raise_on_failure:
        raise ValidationFailedError(
            f"batch quarantined at {path}: {report.summary()}", report=report, quarantine_path=path
        )
    return CommitResult(
        committed=False,
        rows=batch.num_rows,
        inserted=0,
        updated=0,
        version=table.version,
        report=report,
        quarantine_path=path,
        validate_seconds=validated - start,
        write_seconds=time.perf_counter() - validated,
    )
