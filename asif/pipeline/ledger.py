"""What builds leave behind for later ones: the shards a work folder has committed to a table
(`ShardLedger`, so a rerun skips them) and one record per build beside the table (`builds`).

The `builds` table is a LanceDB table in the anchor table's database (so it lives wherever the
table does, S3 included): one row per build that changed a table, keyed by (`table_name`,
`version`), the version it left, with the url list subset it read. Any version the build
committed, `version_before < v <= version`, was made by it: `build_of(location, v)` answers
which url list (file, digest, rows, seed, how) built a version.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lancedb
import pyarrow as pa

from asif.files import atomic_write_text
from asif.store.sql import quote

if TYPE_CHECKING:
    from asif.pipeline.summary import BuildSummary
    from asif.store.location import TableLocation

LEDGER_NAME = "embedded-shards.ledger"
"""JSON, but not named *.json: img2dataset reads every *.json of the folder as shard stats."""
BUILDS_TABLE = "builds"
BUILDS_SCHEMA = pa.schema(
    [
        pa.field("table_name", pa.string(), nullable=False),
        pa.field("version", pa.int64(), nullable=False),
        pa.field("version_before", pa.int64(), nullable=False),
        pa.field("built_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("tag", pa.string()),
        pa.field("url_list", pa.string()),
        pa.field("subset", pa.string()),  # JSON object (`SubsetRecord.as_metadata()`) or null
        pa.field("summary", pa.string()),  # JSON object (`BuildSummary.as_dict()`)
        pa.field("flow_run_id", pa.string()),
    ]
)


class ShardLedger:
    """Shards of a work folder fully committed to one table (a JSON file, written atomically).

    One file serves every table built from the folder: shard names are kept per `table_key`.
    """

    def __init__(self, work_dir: str | Path, table_key: str) -> None:
        self.path = Path(work_dir) / LEDGER_NAME
        self.table_key = table_key
        data = json.loads(self.path.read_text()) if self.path.exists() else {}
        self._all: dict[str, list[str]] = data
        self.done: set[str] = set(data.get(table_key, []))

    def mark(self, shards: Iterable[str]) -> None:
        """Record shards as done and save."""
        new = set(shards) - self.done
        if new:
            self.done |= new
            self._save()

    def reset(self) -> None:
        """Forget this table's shards (its table was emptied or recreated)."""
        if self.done:
            self.done = set()
            self._save()

    def _save(self) -> None:
        self._all[self.table_key] = sorted(self.done)
        atomic_write_text(self.path, json.dumps(self._all, indent=1))


@dataclass(frozen=True)
class BuildRecord:
    """One build of a table: the versions it made, the url list and subset it read, its counts."""

    table_name: str
    version: int
    version_before: int
    built_at: datetime
    tag: str | None
    url_list: str
    subset: dict[str, str] | None
    summary: dict[str, Any]
    flow_run_id: str | None = None

    def made(self, version: int) -> bool:
        """Whether `version` is one this build committed."""
        return self.version_before < version <= self.version


def record_build(
    location: TableLocation, summary: BuildSummary, *, flow_run_id: str | None = None
) -> BuildRecord:
    """Append the build to the `builds` table of the table's database (created if missing)."""
    record = BuildRecord(
        table_name=summary.table_name,
        version=summary.version,
        version_before=summary.version_before,
        built_at=datetime.now(UTC),
        tag=summary.tag,
        url_list=summary.url_list,
        subset=summary.subset,
        summary=summary.as_dict(),
        flow_run_id=flow_run_id,
    )
    row = {
        **record.__dict__,
        "subset": None if record.subset is None else json.dumps(record.subset),
        "summary": json.dumps(record.summary),
    }
    table = _connect(location).create_table(BUILDS_TABLE, schema=BUILDS_SCHEMA, exist_ok=True)
    table.add(pa.Table.from_pylist([row], schema=BUILDS_SCHEMA))
    return record


def read_builds(location: TableLocation) -> list[BuildRecord]:
    """The recorded builds of the table at `location`, oldest first."""
    try:
        table = _connect(location).open_table(BUILDS_TABLE)
    except ValueError:  # lancedb 0.40: "Table 'builds' was not found": nothing recorded yet
        return []
    rows = table.to_lance().to_table(filter=f"table_name = {quote(location.name)}").to_pylist()
    records = [
        BuildRecord(
            **{
                **r,
                "subset": None if r["subset"] is None else json.loads(r["subset"]),
                "summary": json.loads(r["summary"]),
            }
        )
        for r in rows
    ]
    return sorted(records, key=lambda r: (r.version, r.built_at))


def build_of(location: TableLocation, version: int) -> BuildRecord | None:
    """The build that committed `version` of the table, if one was recorded."""
    return next((r for r in reversed(read_builds(location)) if r.made(version)), None)


def _connect(location: TableLocation) -> Any:
    options = dict(location.storage_options) if location.storage_options else None
    return lancedb.connect(location.uri, storage_options=options)
