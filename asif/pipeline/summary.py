"""What a build did: its counts, as the flow's return value, artifact and event payload."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from asif.pipeline.download import DownloadStats
from asif.store.table import AnchorTable


@dataclass
class EmbedTotals:
    """What `embed_and_commit` did across all its batches."""

    embedded: int = 0
    decode_failures: int = 0
    batches: int = 0
    committed_batches: int = 0
    validated_rows: int = 0
    quarantined_batches: int = 0
    quarantined_rows: int = 0
    inserted: int = 0
    updated: int = 0
    skipped_shards: int = 0
    quarantine_paths: list[str] = field(default_factory=list)


@dataclass
class BuildSummary:
    """A whole build: download counts, embed/commit totals and the table's final state."""

    table_uri: str
    table_name: str
    dataset_uri: str
    downloaded: int
    download_failed: int
    failures_by_reason: dict[str, int]
    new_shards: int
    totals: EmbedTotals
    version_before: int
    version: int
    rows: int
    tag: str | None = None

    @property
    def changed(self) -> bool:
        """Whether this build wrote a new table version."""
        return self.version != self.version_before

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able flat dict of every count (the flow's return value)."""
        out = {k: v for k, v in asdict(self).items() if k != "totals"}
        out.update(asdict(self.totals))
        out["changed"] = self.changed
        return out


def summarize(
    table: AnchorTable, stats: DownloadStats, totals: EmbedTotals, version_before: int
) -> BuildSummary:
    """The `BuildSummary` of a finished download + embed/commit over `table`."""
    return BuildSummary(
        table_uri=table.uri,
        table_name=table.name,
        dataset_uri=table.dataset_uri,
        downloaded=stats.succeeded,
        download_failed=stats.failed,
        failures_by_reason=stats.failures_by_reason,
        new_shards=len(stats.new_shards),
        totals=totals,
        version_before=version_before,
        version=table.version,
        rows=len(table),
    )


def event_payload(summary: BuildSummary) -> dict[str, Any]:
    """The payload of the `asif.anchors.updated` event."""
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
