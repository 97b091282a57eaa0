from pathlib import Path

import pytest

from asif.errors import EncoderMismatchError
from asif.pipeline.build import BuildSteps, build_anchor_table, fetch_pairs
from asif.pipeline.download import DownloadOptions, DownloadStats
from asif.pipeline.embed import EmbedOptions
from asif.pipeline.summary import EmbedTotals
from asif.pipeline.url_list import UrlListError
from asif.store.location import TableLocation
from tests.http_fixtures import write_image_folder


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


def _fake_steps(calls: list, *, writes: bool, table_version: int = 3):
    """BuildSteps that record their calls; the table moves one version if `writes`."""

    class Table:
        uri, name, dataset_uri, version = "db", "anchors", "db/anchors.lance", table_version

        def __len__(self) -> int:
            return 7

    table = Table()

    def open_table(location, options):
        calls.append(("open", location.uri))
        return table

    def fetch(source, work_dir, options):
        calls.append(("fetch", str(source)))
        return DownloadStats(Path(work_dir), "parquet", [])

    def embed_commit(stats, t, options, quarantine_dir):
        calls.append(("embed", str(quarantine_dir)))
        if writes:
            t.version += 1
        return EmbedTotals(inserted=int(writes))

    def tag(t, name, version):
        calls.append(("tag", name, version))

    return BuildSteps(open_table, fetch, embed_commit, tag)


@pytest.mark.parametrize("writes", [True, False])
def test_build_runs_the_steps_in_order_and_tags_only_a_change(tmp_path, writes):
    calls: list = []
    summary = build_anchor_table(
        "urls.parquet",
        TableLocation("db"),
        work_dir=tmp_path / "work",
        quarantine_dir="q",
        tag="t1",
        steps=_fake_steps(calls, writes=writes),
    )
    assert calls[:3] == [("open", "db"), ("fetch", "urls.parquet"), ("embed", "q")]
    assert calls[3:] == ([("tag", "t1", 4)] if writes else [])
    assert (summary.version_before, summary.changed, summary.rows) == (3, writes, 7)
    assert summary.tag == ("t1" if writes else None)


def test_open_anchor_table_refuses_other_encoders_before_anything_else(tmp_path, monkeypatch):
    import asif.pipeline.build as build

    monkeypatch.setattr(
        build, "encoder_identity", lambda image, text: (image, 8, text, 4), raising=True
    )
    location = TableLocation(str(tmp_path / "db"))
    table = build.open_anchor_table(location, EmbedOptions("img", "txt"))
    assert (table.image_encoder, table.image_dim, table.text_dim) == ("img", 8, 4)
    with pytest.raises(EncoderMismatchError):
        build.open_anchor_table(location, EmbedOptions("other", "txt"))
