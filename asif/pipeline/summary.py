"""What a build did: its counts, as the flow's return value, artifact, event payload and the
text `asif build-anchors` prints."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from asif.pipeline.download import DownloadStats

if TYPE_CHECKING:
    from asif.pipeline.build import AnchorTarget


def absolute_uri(uri: str) -> str:
    """`uri` as any process can use it, whatever its working folder: a local path made
    absolute, an object-store uri (``s3://...``, or any other scheme) unchanged."""
    if len(urlsplit(uri).scheme) > 1:  # (a drive letter is no scheme)
        return uri
    return str(Path(uri).expanduser().resolve())


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
    validate_seconds: float = 0.0
    write_seconds: float = 0.0


@dataclass
class BuildSummary:
    """A whole build: download counts (this run's, and the work folder's), embed/commit totals,
    the table's final state and the url list subset it read (`subset`, None for a folder).

    `table_uri` is absolute (see `absolute_uri`); `version_before` is 0 if the build created
    the table. `download_seconds` and `embed_seconds` are the wall time of the two steps; the
    second includes the validation and writes (`totals`), done while the actors embed on.
    """

    table_uri: str
    table_name: str
    dataset_uri: str
    url_list: str
    new_downloaded: int
    new_download_failed: int
    skipped_rows: int
    already_downloaded: int
    duplicates: int
    downloaded: int
    download_failed: int
    failures_by_reason: dict[str, int]
    new_shards: int
    totals: EmbedTotals
    version_before: int
    version: int
    rows: int
    subset: dict[str, str] | None = None
    tag: str | None = None
    download_seconds: float = 0.0
    embed_seconds: float = 0.0

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

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> BuildSummary:
        """The summary `as_dict` gave (what a flow run returns)."""
        totals = {f.name for f in fields(EmbedTotals)}
        return cls(
            **{k: v for k, v in values.items() if k not in totals and k != "changed"},
            totals=EmbedTotals(**{k: v for k, v in values.items() if k in totals}),
        )


def summarize(
    target: AnchorTarget,
    url_list: str,
    stats: DownloadStats,
    totals: EmbedTotals,
    version_before: int,
    *,
    download_seconds: float = 0.0,
    embed_seconds: float = 0.0,
) -> BuildSummary:
    """The `BuildSummary` of a finished download + embed/commit into `target`."""
    return BuildSummary(
        table_uri=absolute_uri(target.location.uri),
        table_name=target.location.name,
        dataset_uri=target.dataset_uri,
        url_list=url_list,
        new_downloaded=stats.new_succeeded,
        new_download_failed=stats.new_failed,
        skipped_rows=sum(stats.skipped.values()),
        already_downloaded=stats.already_downloaded,
        duplicates=stats.duplicates,
        downloaded=stats.succeeded,
        download_failed=stats.failed,
        failures_by_reason=stats.failures_by_reason,
        new_shards=len(stats.new_shards),
        totals=totals,
        version_before=version_before,
        version=target.version,
        rows=target.rows,
        subset=stats.subset.as_metadata() if stats.subset is not None else None,
        download_seconds=download_seconds,
        embed_seconds=embed_seconds,
    )


def event_payload(summary: BuildSummary) -> dict[str, Any]:
    """The payload of the `asif.anchors.updated` event."""
    return {
        "table_uri": summary.table_uri,
        "table_name": summary.table_name,
        "version": summary.version,
        "version_before": summary.version_before,
        "tag": summary.tag,
        "inserted": summary.totals.inserted,
        "updated": summary.totals.updated,
        "rows": summary.rows,
        "url_list": summary.url_list,
        "subset": summary.subset,
    }


def summary_rows(summary: BuildSummary) -> list[tuple[str, object]]:
    """(name, value) of every count, in reading order."""
    t = summary.totals
    return [
        ("downloaded pairs (this run)", summary.new_downloaded),
        ("failed downloads (this run)", summary.new_download_failed),
        ("unusable rows skipped (this run)", summary.skipped_rows),
        ("pairs already downloaded", summary.already_downloaded),
        ("repeated pairs", summary.duplicates),
        ("downloaded pairs (work dir)", summary.downloaded),
        ("failed downloads (work dir)", summary.download_failed),
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
        ("download seconds", f"{summary.download_seconds:.1f}"),
        ("embed seconds (commits included)", f"{summary.embed_seconds:.1f}"),
        ("  validating", f"{t.validate_seconds:.1f}"),
        ("  writing to the table", f"{t.write_seconds:.1f}"),
        ("table version", f"{summary.version_before} -> {summary.version}"),
        ("tag", summary.tag or "-"),
    ]


def summary_markdown(summary: BuildSummary) -> str:
    """The build's counts as a markdown report."""
    lines = [
        f"# build-anchors: `{summary.dataset_uri}`",
        "",
        "| | |",
        "|---|---:|",
        *(f"| {name} | {value} |" for name, value in summary_rows(summary)),
    ]
    if summary.subset:
        lines += ["", f"## Url list `{_cell(summary.url_list)}`", "", "| | |", "|---|---|"]
        lines += [f"| {_cell(k)} | {_cell(v)} |" for k, v in summary.subset.items()]
    if summary.failures_by_reason:
        lines += ["", "## Failures by reason", "", "| reason | pairs |", "|---|---:|"]
        lines += [f"| {_cell(r)} | {n} |" for r, n in summary.failures_by_reason.items()]
    if summary.totals.quarantine_paths:
        lines += ["", "## Quarantined batches", ""]
        lines += [f"- `{Path(p)}`" for p in summary.totals.quarantine_paths]
    return "\n".join(lines) + "\n"


def summary_text(summary: BuildSummary) -> str:
    """The build's counts as aligned plain text, for a terminal."""
    rows: list[tuple[str, object]] = [
        ("table", summary.dataset_uri),
        ("url list", summary.url_list),
    ]
    rows += [(f"  {k}", v) for k, v in (summary.subset or {}).items()]
    rows += summary_rows(summary)
    if summary.failures_by_reason:
        rows += [("failures by reason", "")]
        rows += [(f"  {r}", n) for r, n in summary.failures_by_reason.items()]
    rows += [("quarantined batch", p) for p in summary.totals.quarantine_paths]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")[:200]
