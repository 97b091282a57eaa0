"""Build or grow an anchor table from a url list: download -> embed -> validate -> commit.

Plain functions (no Prefect) so every step is testable alone; `flows/build_anchors.py` wraps
them in tasks. `build_anchor_table` runs the whole loop.

Resume: downloads resume through `asif.pipeline.download` (finished shards are kept, unfinished ones
redone). Embedding resumes per shard: once every image row of a shard has been committed or
quarantined, the shard is recorded in the work folder's ledger (`embedded-shards.ledger`, keyed
by table) and later runs skip it. A run killed mid-shard re-embeds that shard; its rows already
in the table are upserted by content id (`anchor_id(url, caption)`), so nothing is duplicated.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from asif.pipeline.download import DownloadOptions, DownloadStats, download_pairs
from asif.pipeline.embed import EmbeddedBatch, EmbedOptions, iter_embedded_batches
from asif.pipeline.folders import pairs_from_folder
from asif.pipeline.validation import CommitResult, commit_batch
from asif.store.table import AnchorTable

LEDGER_NAME = "embedded-shards.ledger"
"""JSON, but not named *.json: img2dataset reads every *.json of the folder as shard stats."""
STORAGE_OPTIONS_ENV = "ASIF_STORAGE_OPTIONS"
_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "aws_access_key_id",
    "AWS_SECRET_ACCESS_KEY": "aws_secret_access_key",
    "AWS_SESSION_TOKEN": "aws_session_token",
    "AWS_DEFAULT_REGION": "aws_region",
    "AWS_REGION": "aws_region",
    "AWS_ENDPOINT_URL": "aws_endpoint",
    "AWS_ENDPOINT": "aws_endpoint",
}

Progress = Callable[[str], None]


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

    def as_dict(self) -> dict:
        """A JSON-able flat dict of every count (the flow's return value)."""
        out = {k: v for k, v in asdict(self).items() if k != "totals"}
        out.update(asdict(self.totals))
        out["changed"] = self.changed
        return out


def storage_options_from_env(env: Mapping[str, str] | None = None) -> dict[str, str] | None:
    """LanceDB storage options from AWS_* variables, overridden by `ASIF_STORAGE_OPTIONS` JSON.

    A plain-http `AWS_ENDPOINT_URL` (MinIO, moto) also sets `allow_http`. None if nothing is set.
    """
    env = os.environ if env is None else env
    options = {key: env[var] for var, key in _AWS_ENV.items() if env.get(var)}
    if options.get("aws_endpoint", "").startswith("http://"):
        options["allow_http"] = "true"
    if env.get(STORAGE_OPTIONS_ENV):
        extra = json.loads(env[STORAGE_OPTIONS_ENV])
        if not isinstance(extra, dict):
            raise ValueError(f"{STORAGE_OPTIONS_ENV} must be a JSON object, got {extra!r}")
        options.update({str(k): str(v) for k, v in extra.items()})
    return options or None


def fetch_pairs(
    source: str | Path, work_dir: str | Path, options: DownloadOptions = DownloadOptions()
) -> DownloadStats:
    """Shards in `work_dir` from a url list file or a folder of captioned images."""
    if Path(source).is_dir():
        return pairs_from_folder(source, work_dir, options)
    return download_pairs(source, work_dir, options)


@lru_cache(maxsize=8)
def encoder_identity(image_encoder: str, text_encoder: str) -> tuple[str, int, str, int]:
    """(image name, image dim, text name, text dim) of two encoder specs (loads them once)."""
    from asif.encoders import load_image_encoder, load_text_encoder

    image = load_image_encoder(image_encoder, device="cpu")
    text = load_text_encoder(text_encoder, device="cpu")
    return image.name, image.dim, text.name, text.dim


def open_anchor_table(
    table_uri: str,
    options: EmbedOptions = EmbedOptions(),
    *,
    table_name: str = "anchors",
    storage_options: Mapping[str, str] | None = None,
) -> AnchorTable:
    """Open (or create) the anchor table for the encoders of `options`; refuses other encoders."""
    image_name, image_dim, text_name, text_dim = encoder_identity(
        options.image_encoder, options.text_encoder
    )
    return AnchorTable.create_or_open(
        table_uri,
        image_encoder=image_name,
        text_encoder=text_name,
        image_dim=image_dim,
        text_dim=text_dim,
        name=table_name,
        storage_options=storage_options,
    )


class ShardLedger:
    """Shards of a work folder fully committed to one table (a JSON file, written atomically)."""

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
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._all, indent=1))
        tmp.replace(self.path)


def embed_and_commit(
    stats: DownloadStats,
    table: AnchorTable,
    options: EmbedOptions = EmbedOptions(),
    *,
    quarantine_dir: str | Path,
    progress: Progress | None = None,
) -> EmbedTotals:
    """Embed the shards not yet in the ledger and commit each batch through `commit_batch`.

    Quarantined batches are counted and skipped, never fatal; a shard enters the ledger once
    all its image rows were committed or quarantined (shards without images at once).
    """
    say = progress or (lambda _msg: None)
    ledger = ShardLedger(stats.output_dir, table.dataset_uri)
    if len(table) == 0:
        ledger.reset()
    expected = {s.path.name: s.succeeded for s in stats.shards}
    totals = EmbedTotals(skipped_shards=len(set(expected) & ledger.done))
    ledger.mark(name for name, n in expected.items() if n == 0)
    pending = [s.path for s in stats.shards if s.path.name not in ledger.done]
    if not pending:
        say(f"nothing to embed: all {len(expected)} shard(s) already committed to the table")
        return totals
    say(f"embedding {len(pending)} shard(s); {totals.skipped_shards} already committed")
    seen: Counter[str] = Counter()
    for batch in iter_embedded_batches(pending, options):
        result = commit_batch(table, batch.table, quarantine_dir=quarantine_dir)
        _add(totals, batch, result)
        seen.update(_shard_names(batch.table))
        seen.update(_shard_names(batch.failed))
        ledger.mark(name for name, n in seen.items() if n >= expected.get(name, n + 1))
        if result.committed:
            say(
                f"committed batch {totals.batches}: {result.rows} rows "
                f"(+{result.inserted} new, {result.updated} updated) -> version {result.version}"
            )
        else:
            say(
                f"quarantined batch {totals.batches} ({result.rows} rows) at "
                f"{result.quarantine_path}: {result.report.summary()}"
            )
    return totals


def build_anchor_table(
    url_list: str | Path,
    table_uri: str,
    *,
    work_dir: str | Path,
    quarantine_dir: str | Path,
    table_name: str = "anchors",
    storage_options: Mapping[str, str] | None = None,
    download: DownloadOptions = DownloadOptions(),
    embed: EmbedOptions = EmbedOptions(),
    tag: str | None = None,
    progress: Progress | None = None,
) -> BuildSummary:
    """Download the url list (or read a folder of captioned images) into `work_dir`, embed new
    shards, validate and commit them to the table.

    With `tag`, the final version is tagged if the build changed the table.
    """
    say = progress or (lambda _msg: None)
    table = open_anchor_table(
        table_uri, embed, table_name=table_name, storage_options=storage_options
    )
    version_before = table.version
    stats = fetch_pairs(url_list, work_dir, download)
    say(f"downloaded {stats.succeeded} pairs, {stats.failed} failed, {len(stats.shards)} shard(s)")
    totals = embed_and_commit(stats, table, embed, quarantine_dir=quarantine_dir, progress=say)
    summary = summarize(table, stats, totals, version_before)
    if tag and summary.changed:
        table.tag(tag)
        summary.tag = tag
    return summary


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


def _shard_names(rows: pa.Table) -> Counter[str]:
    if rows.num_rows == 0 or "shard" not in rows.column_names:
        return Counter()
    counts = pc.value_counts(rows["shard"]).to_pylist()
    return Counter({c["values"]: c["counts"] for c in counts})


def _add(totals: EmbedTotals, batch: EmbeddedBatch, result: CommitResult) -> None:
    totals.batches += 1
    totals.embedded += batch.table.num_rows
    totals.decode_failures += batch.failed.num_rows
    if result.committed:
        totals.committed_batches += 1
        totals.validated_rows += result.rows
        totals.inserted += result.inserted
        totals.updated += result.updated
    else:
        totals.quarantined_batches += 1
        totals.quarantined_rows += result.rows
        totals.quarantine_paths.append(str(result.quarantine_path))
