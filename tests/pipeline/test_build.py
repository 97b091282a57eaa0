import pytest

from asif.pipeline.build import fetch_pairs
from asif.pipeline.download import DownloadOptions, UrlListError
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
