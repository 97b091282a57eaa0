import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from asif.pipeline.download import download_pairs
from asif.pipeline.url_list import UrlListError, drop_blank_pairs, read_url_list


def test_unreadable_url_lists_name_the_file_and_column(tmp_path):
    with pytest.raises(UrlListError, match="nope.parquet"):
        download_pairs(tmp_path / "nope.parquet", tmp_path / "out")
    pq.write_table(pa.table({"link": ["http://x/1.jpg"], "caption": ["c"]}), tmp_path / "a.parquet")
    with pytest.raises(UrlListError, match="no url column 'url'"):
        read_url_list(tmp_path / "a.parquet")
    (tmp_path / "b.tsv").write_text("url\ttext\nhttp://x/1.jpg\tc\n")
    with pytest.raises(UrlListError, match="b.tsv has no caption column 'caption'"):
        read_url_list(tmp_path / "b.tsv")
    table = read_url_list(tmp_path / "b.tsv", caption_col="text")
    assert table.to_pylist() == [{"url": "http://x/1.jpg", "caption": "c"}]
    (tmp_path / "c.json").write_text("{}")
    with pytest.raises(UrlListError, match="format 'json'"):
        read_url_list(tmp_path / "c.json")


def test_compressed_csv_is_read_by_its_suffix(tmp_path):
    import gzip

    with gzip.open(tmp_path / "l.csv.gz", "wt") as f:
        f.write("url,caption\nhttp://x/1.jpg,one\n")
    assert read_url_list(tmp_path / "l.csv.gz").num_rows == 1


def test_blank_pairs_are_dropped_and_counted():
    pairs = pa.table(
        {
            "url": ["http://x/1.jpg", None, "http://x/3.jpg", " "],
            "caption": ["one", "two", "  ", "four"],
        }
    )
    kept, blank = drop_blank_pairs(pairs)
    assert (kept.to_pylist(), blank) == ([{"url": "http://x/1.jpg", "caption": "one"}], 3)
    assert drop_blank_pairs(pairs.slice(0, 0))[1] == 0
