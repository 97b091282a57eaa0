"""download_pairs against a local HTTP server: counts, shards, resume, headerless lists."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from PIL import Image

from asif.pipeline.download import DownloadOptions, collect_stats, download_pairs
from asif.pipeline.subset import read_subset
from asif.pipeline.url_list import UrlListError, UrlListOptions
from tests.http_fixtures import ImageServer, generate_pairs, write_url_list

ROOT = Path(__file__).resolve().parents[1]
ITEMS = generate_pairs(10, n_missing=2, n_html=2, n_truncated=2)
PAIRS = [p for p, _ in ITEMS]
EXTRA = generate_pairs(4, start=100)
CC12M_ITEMS = generate_pairs(5, n_missing=1, start=200)
CC12M = UrlListOptions(url_col=0, caption_col=1)
FIVE_PER_SHARD = DownloadOptions(samples_per_shard=5)


@pytest.fixture(scope="module")
def server():
    with ImageServer(ITEMS + EXTRA + CC12M_ITEMS) as srv:
        yield srv


@pytest.fixture(scope="module")
def first_run(server, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("download")
    url_list = write_url_list(server, PAIRS, tmp / "urls.parquet")
    stats = download_pairs(
        url_list, tmp / "shards", DownloadOptions(samples_per_shard=5, threads=4)
    )
    return stats, tmp


def test_counts_are_exact(first_run):
    stats, _ = first_run
    assert (stats.total, stats.succeeded, stats.failed) == (16, 10, 6)
    assert (stats.failed_to_download, stats.failed_to_resize) == (2, 4)
    assert stats.failures_by_reason == {"Image decoding error": 4, "HTTP Error 404: Not Found": 2}
    assert [s.count for s in stats.shards] == [5, 5, 5, 1]


def test_shards_hold_the_good_images(first_run, server):
    stats, _ = first_run
    assert stats.new_shards == stats.shard_files
    assert [p.name for p in stats.shard_files] == [f"0000{i}.parquet" for i in range(4)]
    table = pa.concat_tables(pq.read_table(p) for p in stats.shard_files)
    good = table.filter(pc.equal(table["status"], "success"))
    expected = {(server.url(p), p.caption) for p in PAIRS if p.ok}
    assert set(zip(good["url"].to_pylist(), good["caption"].to_pylist(), strict=True)) == expected
    assert all(good["jpg"].to_pylist())
    # smaller than image_size (256): stored at their size, not upscaled
    sizes = {server.url(p): p.size for p in PAIRS if p.ok}
    for url, jpg in zip(good["url"].to_pylist(), good["jpg"].to_pylist(), strict=True):
        assert Image.open(io.BytesIO(jpg)).size == sizes[url]


def test_images_bigger_than_image_size_are_resized(tmp_path, server):
    url_list = write_url_list(server, PAIRS, tmp_path / "urls.parquet")
    stats = download_pairs(url_list, tmp_path / "shards", DownloadOptions(image_size=32))
    table = pa.concat_tables(pq.read_table(p) for p in stats.shard_files)
    good = table.filter(pc.equal(table["status"], "success"))
    sides = {min(Image.open(io.BytesIO(jpg)).size) for jpg in good["jpg"].to_pylist()}
    assert sides == {32}


def test_rerun_downloads_nothing_and_a_longer_list_only_its_new_pairs(first_run, server):
    stats, tmp = first_run
    hits = dict(server.hits)
    again = download_pairs(tmp / "urls.parquet", tmp / "shards", FIVE_PER_SHARD)
    assert again.new_shards == []
    assert (again.total, again.succeeded) == (16, 10)  # the folder's totals
    assert (again.new_attempted, again.new_succeeded, again.already_downloaded) == (0, 0, 16)
    assert server.hits == hits

    longer = write_url_list(server, PAIRS + [p for p, _ in EXTRA], tmp / "longer.csv")
    grown = download_pairs(longer, tmp / "shards", FIVE_PER_SHARD)
    assert [p.name for p in grown.new_shards] == ["00004.parquet"]
    assert (grown.total, grown.succeeded, grown.failed) == (20, 14, 6)
    assert (grown.new_attempted, grown.new_succeeded, grown.new_failed) == (4, 4, 0)
    assert {k: v for k, v in server.hits.items() if v != hits.get(k)} == {
        p.path: 1 for p, _ in EXTRA
    }
    assert collect_stats(tmp / "shards").shard_files == grown.shard_files


def test_csv_list_to_webdataset_skips_rows_without_caption(server, tmp_path, capfd):
    url_list = tmp_path / "urls.csv"
    rows = [p for p in PAIRS if p.ok][:4] + [p for p in PAIRS if p.kind == "missing"][:1]
    write_url_list(server, rows, url_list)
    with url_list.open("a") as f:
        f.write(f'"{server.base_url}/img/1.jpg",""\n')
    stats = download_pairs(url_list, tmp_path / "wds", DownloadOptions(output_format="webdataset"))
    assert (stats.total, stats.succeeded, stats.failed) == (6, 4, 2)
    assert stats.failures_by_reason == {"missing url or caption": 1, "HTTP Error 404: Not Found": 1}
    assert [p.name for p in stats.shard_files] == ["00000.tar"]
    out, err = capfd.readouterr()
    assert out == "" and "images per sec" in err  # img2dataset's report keeps stdout clean
    with pytest.raises(ValueError, match="webdataset"):
        download_pairs(url_list, tmp_path / "wds", DownloadOptions(output_format="parquet"))


def test_a_headerless_cc12m_tsv_downloads_its_pairs_byte_exact_and_resumes(server, tmp_path):
    good = [p for p, _ in CC12M_ITEMS if p.ok]
    missing = [p for p, _ in CC12M_ITEMS if not p.ok][0]
    captions = {
        good[0].path: f'"Best" {good[0].caption}',
        good[1].path: f'"an unclosed quote, <PERSON> {good[1].caption}',
        good[2].path: f"{good[2].caption} «café» 'x'",
    }
    rows = [f"{server.url(p)}\t{captions.get(p.path, p.caption)}" for p in [*good, missing]]
    lines = [rows[0], "", rows[1], f"{server.url(good[0])}\ttoo\tmany", *rows[2:], rows[0]]
    url_list = tmp_path / "cc12m.tsv"
    url_list.write_bytes("\r\n".join(lines).encode())
    stats = download_pairs(url_list, tmp_path / "shards", source=CC12M)
    assert stats.skipped == {"blank line": 1, "malformed line (wrong number of fields)": 1}
    assert stats.skipped_examples["blank line"] == ["line 2"]
    assert (stats.duplicates, stats.already_downloaded) == (1, 0)
    assert (stats.new_attempted, stats.new_succeeded, stats.new_failed) == (6, 5, 1)
    assert stats.subset is not None and (stats.subset.rows_read, stats.subset.how) == (9, "all")
    table = pa.concat_tables(
        pq.read_table(p, columns=["url", "caption"]) for p in stats.shard_files
    )
    assert sorted(table.to_pylist(), key=lambda r: r["url"]) == sorted(
        ({"url": r.split("\t")[0], "caption": r.split("\t")[1]} for r in rows),
        key=lambda r: r["url"],
    )

    hits = dict(server.hits)
    again = download_pairs(url_list, tmp_path / "shards", source=CC12M)
    assert server.hits == hits and again.new_shards == []
    assert (again.new_attempted, again.already_downloaded, again.duplicates) == (0, 7, 0)

    sample = UrlListOptions(url_col=0, caption_col=1, sample=4, seed=3)
    expected = read_subset(url_list, sample).pairs.to_pylist()
    sampled = download_pairs(url_list, tmp_path / "sampled", source=sample)
    got = pa.concat_tables(
        pq.read_table(p, columns=["url", "caption"]) for p in sampled.shard_files
    )
    distinct = list(dict.fromkeys((r["url"], r["caption"]) for r in expected))
    assert sorted((r["url"], r["caption"]) for r in got.to_pylist()) == sorted(distinct)
    assert sampled.subset is not None and sampled.subset.rows_selected == 4
    hits = dict(server.hits)
    again = download_pairs(url_list, tmp_path / "sampled", source=sample)
    assert server.hits == hits and again.new_shards == []


def test_a_subset_that_selects_nothing_usable_is_refused(tmp_path):
    url_list = tmp_path / "cc12m.tsv"
    url_list.write_text("https://x/1.jpg\tone\nhttps://x/2.jpg\n\n")
    with pytest.raises(UrlListError, match="no row selected"):
        download_pairs(
            url_list, tmp_path / "out", source=UrlListOptions(url_col=0, caption_col=1, start=10)
        )
    with pytest.raises(
        UrlListError, match="none of the 2 selected rows is usable: .*1 malformed line"
    ):
        download_pairs(
            url_list, tmp_path / "out", source=UrlListOptions(url_col=0, caption_col=1, start=1)
        )


def test_resume_after_kill_keeps_finished_shards(server, tmp_path):
    good = [p for p in PAIRS if p.ok][:9]
    url_list = write_url_list(server, good, tmp_path / "urls.parquet")
    out = tmp_path / "shards"
    code = (
        "from asif.pipeline.download import DownloadOptions, download_pairs; "
        f"download_pairs({str(url_list)!r}, {str(out)!r}, "
        "DownloadOptions(samples_per_shard=3, threads=1))"
    )
    hits_before = dict(server.hits)
    server.delay = 0.4
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while not (out / "00000_stats.json").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        server.delay = 0.0
    finished = collect_stats(out)
    assert 1 <= len(finished.shards) < 3
    done_urls = set(pq.read_table(finished.shard_files[0], columns=["url"])["url"].to_pylist())

    stats = download_pairs(url_list, out, DownloadOptions(samples_per_shard=3, threads=4))
    assert (stats.total, stats.succeeded) == (9, 9)
    urls = pa.concat_tables(pq.read_table(p, columns=["url"]) for p in stats.shard_files)["url"]
    assert sorted(urls.to_pylist()) == sorted(server.url(p) for p in good)
    done_paths = {u.removeprefix(server.base_url) for u in done_urls}
    assert all(server.hits[p] - hits_before.get(p, 0) == 1 for p in done_paths)
    assert not (out / "_tmp").exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"output_format": "tar"}, "output_format must be one of"),
        ({"resize_mode": "stretch"}, "resize_mode must be one of"),
        ({"threads": 0}, "threads must be at least 1, not 0"),
        ({"retries": -1}, "retries must be at least 0"),
    ],
)
def test_bad_download_options_are_refused(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DownloadOptions(**options)
