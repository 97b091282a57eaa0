"""pairs_from_folder: a folder of captioned images becomes the shards a download writes."""

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from asif.pipeline.download import DownloadOptions
from asif.pipeline.folders import folder_pairs, pairs_from_folder
from tests.http_fixtures import write_image_folder


def test_pairs_from_folder(tmp_path):
    folder = write_image_folder(tmp_path / "images", 5, n_uncaptioned=1, n_corrupt=1)
    four = DownloadOptions(samples_per_shard=4)
    stats = pairs_from_folder(folder, tmp_path / "shards", four)
    assert (stats.total, stats.succeeded, stats.failed) == (7, 5, 2)
    assert stats.failures_by_reason == {"missing caption": 1, "Image decoding error": 1}
    table = pa.concat_tables(pq.read_table(p) for p in stats.shard_files)
    urls = table.filter(pc.equal(table["status"], "success"))["url"].to_pylist()
    assert sorted(urls) == sorted(
        p.resolve().as_uri() for p in folder.rglob("img*") if p.suffix != ".txt"
    )
    assert pairs_from_folder(folder, tmp_path / "shards", four).new_shards == []


def test_folder_pairs_take_image_suffixes_in_any_case(tmp_path):
    for name in ("a.JPG", "b.ppm", "c.webp", "notes.md"):
        (tmp_path / name).write_bytes(b"x")
        (tmp_path / name).with_suffix(".txt").write_text(f"caption of {name}")
    (tmp_path / "d.png").write_bytes(b"x")  # no caption
    (tmp_path / "e.png").write_bytes(b"x")
    (tmp_path / "e.txt").write_text("   ")  # blank caption
    pairs, uncaptioned = folder_pairs(tmp_path)
    assert uncaptioned == 2
    assert [u.rsplit("/", 1)[1] for u in pairs["url"].to_pylist()] == ["a.JPG", "b.ppm", "c.webp"]
    assert pairs["caption"].to_pylist()[0] == "caption of a.JPG"
