from pathlib import Path

import lancedb
import pyarrow as pa
import pytest

import asif.pipeline.build as build
import asif.pipeline.embed as embed
from asif.errors import EncoderMismatchError
from asif.pipeline.build import (
    AnchorTarget,
    BuildSteps,
    build_anchor_table,
    embed_and_commit,
    fetch_pairs,
)
from asif.pipeline.download import DownloadOptions, DownloadStats, ShardStats
from asif.pipeline.embed import EmbedOptions
from asif.pipeline.ledger import read_builds
from asif.pipeline.progress import ProgressTracker
from asif.pipeline.summary import EmbedTotals
from asif.pipeline.url_list import UrlListError, UrlListOptions
from asif.store.location import TableLocation
from asif.store.schema import THUMBNAIL, anchor_schema
from asif.store.table import AnchorTable
from tests.http_fixtures import write_image_folder
from tests.pipeline.batches import DI, DT, make_batch


@pytest.fixture
def small_encoders(monkeypatch):
    """Encoder specs stand for themselves (8-d images, 4-d text): no model is loaded."""
    monkeypatch.setattr(build, "encoder_identity", lambda image, text: (image, DI, text, DT))


def test_fetch_pairs_reads_a_folder_again_after_it_grows(tmp_path):
    options = DownloadOptions(samples_per_shard=4)
    folder = write_image_folder(tmp_path / "images", 3)
    first = fetch_pairs(folder, tmp_path / "work", options)
    assert (first.succeeded, len(first.new_shards)) == (3, 1)
    write_image_folder(folder, 2, start=3)
    second = fetch_pairs(folder, tmp_path / "work", options)
    assert second.succeeded == 5 and len(second.new_shards) == 1


def test_fetch_pairs_takes_a_file_as_a_url_list(tmp_path):
    with pytest.raises(UrlListError, match="missing.parquet"):
        fetch_pairs(tmp_path / "missing.parquet", tmp_path / "work")


def test_url_list_options_do_not_apply_to_a_folder(tmp_path):
    folder = write_image_folder(tmp_path / "images", 1)
    with pytest.raises(ValueError, match="do not apply to the folder"):
        fetch_pairs(folder, tmp_path / "work", source=UrlListOptions(limit=1))
    assert not (tmp_path / "work").exists()


def _fake_steps(calls: list, *, writes: bool, table_version: int = 3):
    """BuildSteps that record their calls; the table moves one version if `writes`."""

    class Table:
        version, dataset_uri = table_version, "db/anchors.lance"

        def __len__(self) -> int:
            return 7

        def upgrade(self) -> None:
            calls.append(("upgrade",))

    target = AnchorTarget(TableLocation("db"), "img", DI, "txt", DT, Table())  # type: ignore[arg-type]

    def open_table(location, options):
        calls.append(("open", location.uri))
        return target

    def fetch(url_list, work_dir, source, options, tracker):
        calls.append(("fetch", str(url_list), source.limit))
        return DownloadStats(Path(work_dir), "parquet", [])

    def embed_commit(stats, t, options, quarantine_dir, tracker):
        calls.append(("embed", str(quarantine_dir)))
        if writes:
            t.table.version += 1
        return EmbedTotals(inserted=int(writes))

    def tag(t, name, version):
        calls.append(("tag", name, version))

    def record(location, summary):
        calls.append(("record", summary.version_before, summary.version))

    return BuildSteps(open_table, fetch, embed_commit, tag, record)


@pytest.mark.parametrize("writes", [True, False])
def test_build_runs_the_steps_in_order_tags_and_records_only_a_change(tmp_path, writes):
    calls: list = []
    summary = build_anchor_table(
        "urls.parquet",
        TableLocation("db"),
        work_dir=tmp_path / "work",
        quarantine_dir="q",
        source=UrlListOptions(limit=5),
        tag="t1",
        steps=_fake_steps(calls, writes=writes),
    )
    assert calls[:3] == [("open", "db"), ("fetch", "urls.parquet", 5), ("embed", "q")]
    assert calls[3:] == ([("upgrade",), ("tag", "t1", 4), ("record", 3, 4)] if writes else [])
    assert (summary.version_before, summary.changed, summary.rows) == (3, writes, 7)
    assert summary.tag == ("t1" if writes else None)
    assert summary.table_uri == str(Path("db").resolve())


def test_open_anchor_table_writes_nothing_and_refuses_other_encoders(tmp_path, small_encoders):
    location = TableLocation(str(tmp_path / "db"))
    target = build.open_anchor_table(location, EmbedOptions("img", "txt"))
    assert target.table is None and (target.version, target.rows) == (0, 0)
    assert not (tmp_path / "db" / "anchors.lance").exists()
    assert target.dataset_uri == str(tmp_path / "db" / "anchors.lance")
    table = target.writable()
    assert (table.image_encoder, table.image_dim, table.text_dim, table.version) == (
        "img",
        DI,
        DT,
        1,
    )
    assert table.dataset_uri == target.dataset_uri
    with pytest.raises(EncoderMismatchError, match="requested model names image encoder 'other'"):
        build.open_anchor_table(location, EmbedOptions("other", "txt"))
    assert build.open_anchor_table(location, EmbedOptions("img", "txt")).version == 1


def test_a_build_that_fails_before_downloading_leaves_no_table(tmp_path, small_encoders):
    """A bad url list: no table, hence no version, is created (the table comes with a commit)."""
    location = TableLocation(str(tmp_path / "db"))
    with pytest.raises(UrlListError):
        build_anchor_table(
            tmp_path / "missing.csv",
            location,
            work_dir=tmp_path / "work",
            quarantine_dir=tmp_path / "q",
            embed=EmbedOptions("img", "txt"),
        )
    assert not (tmp_path / "db" / "anchors.lance").exists()


def test_a_failed_build_leaves_an_existing_table_at_its_version(tmp_path, small_encoders):
    location = TableLocation(str(tmp_path / "db"))
    table = build.open_anchor_table(location, EmbedOptions("img", "txt")).writable()
    with pytest.raises(UrlListError):
        build_anchor_table(
            tmp_path / "missing.csv",
            location,
            work_dir=tmp_path / "work",
            quarantine_dir=tmp_path / "q",
            embed=EmbedOptions("img", "txt"),
        )
    assert [v.version for v in AnchorTable.open(table.uri).versions()] == [1]


def _shards(tmp_path: Path, sizes: dict[str, int]) -> DownloadStats:
    shards = [ShardStats(tmp_path / name, n, n, 0, 0, {}) for name, n in sizes.items()]
    return DownloadStats(tmp_path, "parquet", shards, new_shards=[s.path for s in shards])


def _block(shard: str, n: int, start: int, n_failed: int = 0) -> pa.Table:
    """An actor batch as `embed_blocks` yields it: `n` embedded rows, then `n_failed` rows
    whose image did not decode (zero embeddings, an `error`)."""
    batch = make_batch(n + n_failed, start, seed=start)
    batch = batch.set_column(
        batch.schema.get_field_index("shard"), "shard", pa.array([shard] * (n + n_failed))
    )
    return batch.append_column(
        "error", pa.array([None] * n + ["not an image"] * n_failed, pa.string())
    )


def _arrive(monkeypatch, *blocks: pa.Table, before=lambda: None) -> list[Path]:
    """Ray's part of the embedding replaced by `blocks`; `before` runs before each one comes.
    Returns the shards it was asked for, once it is."""
    asked: list[Path] = []

    def fake_blocks(shards, options):
        asked.extend(Path(s) for s in shards)
        for block in blocks:
            before()
            yield block

    monkeypatch.setattr(embed, "embed_blocks", fake_blocks)
    monkeypatch.setattr(build, "_quiet_ray", lambda: None)
    return asked


def test_embed_counts_rows_as_they_come_and_commits_rows_per_batch(tmp_path, monkeypatch):
    """Ray yields `batch_size` rows at a time (each counted at once); commits take
    `rows_per_batch`; the table is created at the first commit; shards enter the ledger."""
    stats = _shards(tmp_path, {"00000.parquet": 6, "00001.parquet": 4})
    tracker = ProgressTracker()
    location = TableLocation(str(tmp_path / "db"))
    target = AnchorTarget(location, "img-enc", DI, "txt-enc", DT)
    seen: list[tuple[int, int, int]] = []

    def look():
        s = tracker.snapshot()
        seen.append((s.done, s.committed, target.version))

    asked = _arrive(
        monkeypatch,
        _block("00000.parquet", 3, 0),
        _block("00000.parquet", 2, 3, n_failed=1),
        _block("00001.parquet", 3, 6),
        _block("00001.parquet", 1, 9),
        before=look,
    )
    options = EmbedOptions(batch_size=3, rows_per_batch=4)
    totals = embed_and_commit(
        stats, target, options, quarantine_dir=tmp_path / "q", tracker=tracker
    )
    assert [p.name for p in asked] == ["00000.parquet", "00001.parquet"]
    # a batch of 4 rows: the 2nd holds the row that did not decode, so commits 3
    assert seen == [(0, 0, 0), (3, 0, 0), (6, 4, 2), (9, 7, 3)]
    assert (totals.embedded, totals.decode_failures, totals.inserted) == (9, 1, 9)
    assert totals.batches == totals.committed_batches == 3  # 4 + 3 + 2 rows
    s = tracker.snapshot()
    assert (s.phase, s.total, s.done, s.embedded, s.committed, s.decode_failed) == (
        "embed", 10, 10, 9, 9, 1
    )  # fmt: skip
    table = AnchorTable.open(location.uri)
    assert len(table) == 9 and [v.version for v in table.versions()] == [1, 2, 3, 4, 5]
    assert [i.columns for i in table.lance_table.list_indices()] == [["id"]]  # version 5
    again = embed_and_commit(stats, target, options, quarantine_dir=tmp_path / "q")
    assert again.skipped_shards == 2 and again.batches == 0


def test_a_batch_that_waited_commit_seconds_is_committed_before_it_is_full(tmp_path, monkeypatch):
    """`commit_seconds` holds on the build path too: with 0 each actor batch is committed as
    it arrives, however large `rows_per_batch`."""
    stats = _shards(tmp_path, {"00000.parquet": 6})
    target = AnchorTarget(TableLocation(str(tmp_path / "db")), "img-enc", DI, "txt-enc", DT)
    versions: list[int] = []
    blocks = [_block("00000.parquet", 2, i) for i in (0, 2, 4)]
    _arrive(monkeypatch, *blocks, before=lambda: versions.append(target.version))
    options = EmbedOptions(batch_size=2, rows_per_batch=1000, commit_seconds=0)
    totals = embed_and_commit(stats, target, options, quarantine_dir=tmp_path / "q")
    assert versions == [0, 2, 3]  # created (1) and first commit (2) before the second batch
    assert totals.committed_batches == 3 and len(target.writable()) == 6


def test_embed_of_only_broken_images_creates_no_table(tmp_path, monkeypatch):
    stats = _shards(tmp_path, {"00000.parquet": 2})
    _arrive(monkeypatch, _block("00000.parquet", 0, 0, n_failed=2))
    target = AnchorTarget(TableLocation(str(tmp_path / "db")), "img-enc", DI, "txt-enc", DT)
    totals = embed_and_commit(stats, target, quarantine_dir=tmp_path / "q")
    assert (totals.decode_failures, totals.batches, target.table) == (2, 0, None)
    assert not (tmp_path / "db" / "anchors.lance").exists()


def test_a_changed_table_records_the_build_with_its_subset(tmp_path, small_encoders, monkeypatch):
    """The real plain steps, on a url list: the subset goes to the summary and `builds`."""
    from asif.pipeline.subset import SubsetRecord

    location = TableLocation(str(tmp_path / "db"))
    subset = SubsetRecord("urls.csv", "ab" * 32, 100, 10, 4, "sample=4", 7)
    stats = _shards(tmp_path / "work", {"00000.parquet": 4})
    stats = DownloadStats(
        stats.output_dir, "parquet", stats.shards, stats.new_shards, subset=subset
    )
    monkeypatch.setattr(build, "fetch_pairs", lambda url_list, work_dir, options, source: stats)
    _arrive(monkeypatch, _block("00000.parquet", 4, 0))
    summary = build_anchor_table(
        "urls.csv",
        location,
        work_dir=tmp_path / "work",
        quarantine_dir=tmp_path / "q",
        source=UrlListOptions(sample=4, seed=7),
        embed=EmbedOptions("img-enc", "txt-enc"),
        tag="s4",
    )
    assert summary.subset == subset.as_metadata()
    assert summary.download_seconds >= 0 and summary.embed_seconds > 0
    assert summary.totals.validate_seconds > 0 and summary.totals.write_seconds > 0
    assert (summary.version_before, summary.version, summary.rows) == (0, 3, 4)  # 3: id index
    [record] = read_builds(location)
    assert (record.version, record.tag, record.subset) == (3, "s4", subset.as_metadata())
    assert record.summary["inserted"] == 4
    assert len(AnchorTable.open(location.uri)) == 4


def test_a_table_made_before_thumbnails_gains_the_column_once_the_build_writes(
    tmp_path, small_encoders
):
    """Issue 17: rows built into an older table keep their thumbnails from then on."""
    schema = anchor_schema(DI, DT, "img", "txt")
    old = schema.remove(schema.get_field_index(THUMBNAIL))
    lancedb.connect(str(tmp_path / "db")).create_table("anchors", schema=old)
    target = build.open_anchor_table(
        TableLocation(str(tmp_path / "db")), EmbedOptions("img", "txt")
    )
    assert not target.table.has_thumbnails and target.version == 1  # opening writes nothing
    table = target.writable()
    assert table.has_thumbnails and table.version == 2
    assert target.writable().version == 2  # once
