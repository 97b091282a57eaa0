"""Subsets of a url list: exact limits and ranges, seeded samples and fractions that pick the
same rows whatever the chunking or the format, and the record that says which rows."""

from __future__ import annotations

import dataclasses
import hashlib

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import asif.pipeline.url_list as url_list_module
from asif.pipeline.subset import SubsetRecord, read_subset
from asif.pipeline.url_list import UrlListOptions

N = 1000
BAD = {17, 500}
"""Rows that are malformed lines: rows all the same, usable or not."""


def _url(i: int) -> str:
    return f"https://img.example/{i}.jpg"


@pytest.fixture
def tsv(tmp_path):
    lines = [f"{_url(i)}\tcaption {i}" if i not in BAD else f"{_url(i)}" for i in range(N)]
    path = tmp_path / "cc12m.tsv"
    path.write_text("\n".join(lines) + "\n")
    return path


def _rows(path, **options) -> list[int]:
    pairs = read_subset(path, UrlListOptions(url_col=0, caption_col=1, **options)).pairs
    return [int(u.rsplit("/", 1)[1].split(".")[0]) for u in pairs["url"].to_pylist()]


def test_limit_and_range_take_exact_rows_and_stop_reading(tsv):
    assert _rows(tsv, limit=5) == [0, 1, 2, 3, 4]
    assert _rows(tsv, start=15, limit=4) == [15, 16, 18]  # row 17 is a malformed line
    assert _rows(tsv, start=990) == list(range(990, N))
    assert _rows(tsv, start=10, stop=13) == [10, 11, 12]
    assert _rows(tsv, start=10, stop=30, limit=2) == [10, 11]
    got = read_subset(tsv, UrlListOptions(url_col=0, caption_col=1, start=15, limit=4))
    assert (got.record.rows_read, got.record.rows_selected) == (19, 4)
    assert got.record.how == "start=15 limit=4" and got.record.seed is None
    assert got.skipped.counts == {"malformed line (wrong number of fields)": 1}
    assert got.skipped.examples == {"malformed line (wrong number of fields)": ["line 18"]}


def test_a_sample_is_exact_reproducible_and_seeded(tsv):
    first = _rows(tsv, sample=100, seed=1)
    assert first == _rows(tsv, sample=100, seed=1)
    assert first == sorted(first)  # file order
    other = _rows(tsv, sample=100, seed=2)
    assert other != first and len(set(other) & set(first)) < 50
    got = read_subset(tsv, UrlListOptions(url_col=0, caption_col=1, sample=100, seed=1))
    bad = sum(got.skipped.counts.values())
    assert got.record.rows_selected == 100 and len(first) + bad == 100
    assert got.record.how == "sample=100" and got.record.seed == 1
    assert set(_rows(tsv, sample=10, start=100, stop=200)) <= set(range(100, 200))
    assert len(_rows(tsv, sample=10, start=100, stop=200)) == 10
    assert _rows(tsv, sample=5000) == [i for i in range(N) if i not in BAD]  # more than there is


def test_a_fraction_is_reproducible_and_about_its_size(tsv):
    tenth = _rows(tsv, fraction=0.1, seed=7)
    assert tenth == _rows(tsv, fraction=0.1, seed=7)
    assert 60 <= len(tenth) <= 140
    assert tenth != _rows(tsv, fraction=0.1, seed=8)
    assert set(_rows(tsv, fraction=0.05, seed=7)) <= set(tenth)  # nested: the same hashes
    assert _rows(tsv, fraction=1.0) == [i for i in range(N) if i not in BAD]


@pytest.mark.parametrize("option", [{"sample": 37, "seed": 3}, {"fraction": 0.2, "seed": 3}])
def test_random_subsets_do_not_depend_on_chunking_or_format(tsv, tmp_path, monkeypatch, option):
    whole = _rows(tsv, **option)
    monkeypatch.setattr(url_list_module, "BLOCK_BYTES", 50)  # about one line per chunk
    assert _rows(tsv, **option) == whole
    table = pa.table(
        {
            "url": [_url(i) for i in range(N)],
            "caption": [f"caption {i}" if i not in BAD else "" for i in range(N)],
        }
    )
    pq.write_table(table, tmp_path / "same.parquet", row_group_size=64)
    monkeypatch.setattr(url_list_module, "PARQUET_ROWS", 16)
    assert _rows(tmp_path / "same.parquet", **option) == whole


def test_the_record_names_the_file_its_digest_and_the_rows(tsv):
    got = read_subset(tsv, UrlListOptions(url_col=0, caption_col=1, start=3, stop=50))
    data = tsv.read_bytes()
    assert got.record == SubsetRecord(
        file_name="cc12m.tsv",
        sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
        rows_read=50,
        rows_selected=47,
        how="start=3 stop=50",
        seed=None,
    )
    assert got.record.as_metadata() == {
        "url_list.file": "cc12m.tsv",
        "url_list.sha256": hashlib.sha256(data).hexdigest(),
        "url_list.size_bytes": str(len(data)),
        "url_list.rows_read": "50",
        "url_list.rows_selected": "47",
        "url_list.subset": "start=3 stop=50",
        "url_list.seed": "",
    }
    with pytest.raises(dataclasses.FrozenInstanceError):
        got.record.rows_read = 0  # type: ignore[misc]
    everything = read_subset(tsv, UrlListOptions(url_col=0, caption_col=1)).record
    assert (everything.how, everything.rows_read, everything.rows_selected) == ("all", N, N)
