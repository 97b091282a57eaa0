"""Reading url lists: CC12M/CC3M headerless TSVs byte-exact, CSV quoting without merged rows,
LAION parquet names, header detection, columns by position, errors that say what to do."""

from __future__ import annotations

import gzip
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import asif.pipeline.url_list as url_list_module
from asif.errors import AsifError
from asif.pipeline.download import download_pairs
from asif.pipeline.subset import read_subset
from asif.pipeline.url_list import UrlListError, UrlListOptions, open_url_list

CC12M = UrlListOptions(url_col=0, caption_col=1)
CC3M = UrlListOptions(url_col=1, caption_col=0)
FILLER = [(f"https://img.example/{i}.jpg", f"filler caption {i}") for i in range(40)]
"""Rows after the unclosed quote: a quote-processing reader swallows them."""

# (line bytes, terminator, expected pair or skip reason)
CC12M_LINES: list[tuple[bytes, bytes, tuple[str, str] | str]] = [
    (b'https://x/1.jpg\t"Best" pizza in town', b"\n", ("https://x/1.jpg", '"Best" pizza in town')),
    (b'https://x/2.jpg\t"an unclosed quote', b"\r\n", ("https://x/2.jpg", '"an unclosed quote')),
    *[(f"{u}\t{c}".encode(), b"\n", (u, c)) for u, c in FILLER],
    (
        b"https://x/3.jpg\t<PERSON> and <PERSON> at the beach",
        b"\n",
        ("https://x/3.jpg", "<PERSON> and <PERSON> at the beach"),
    ),
    (
        "https://x/4.jpg\tcafé ☕ 日本 «quoted» 'single'".encode(),
        b"\r\n",
        ("https://x/4.jpg", "café ☕ 日本 «quoted» 'single'"),
    ),
    (b"", b"\n", "blank line"),
    (b"", b"\r\n", "blank line"),
    (b"https://x/5.jpg\ta bare\rCR stays", b"\n", ("https://x/5.jpg", "a bare\rCR stays")),
    (b"https://x/6.jpg\ttoo\tmany fields", b"\n", "malformed line (wrong number of fields)"),
    (b"https://x/7.jpg", b"\n", "malformed line (wrong number of fields)"),
    (b"https://x/8.jpg\t\xff\xfe not utf-8", b"\n", "invalid UTF-8"),
    (b"https://x/9.jpg\t   ", b"\n", "missing url or caption"),
    (
        b'https://x/10.jpg\t  spaces kept, "quotes" too  ',
        b"\n",
        ("https://x/10.jpg", '  spaces kept, "quotes" too  '),
    ),
    (
        b"https://x/11.jpg\tthe last line has no terminator",
        b"",
        ("https://x/11.jpg", "the last line has no terminator"),
    ),
]


def _write(path: Path, lines: list[tuple[bytes, bytes]]) -> Path:
    data = b"".join(line + end for line, end in lines)
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


def _expected(lines: list[tuple[bytes, bytes, tuple[str, str] | str]]):
    pairs = [e for _, _, e in lines if isinstance(e, tuple)]
    skipped: dict[str, int] = {}
    for _, _, e in lines:
        if isinstance(e, str):
            skipped[e] = skipped.get(e, 0) + 1
    return pairs, skipped


@pytest.mark.parametrize("name", ["cc12m.tsv", "cc12m.tsv.gz"])
def test_a_headerless_cc12m_tsv_gives_exactly_its_rows_byte_exact(tmp_path, name):
    path = _write(tmp_path / name, [(line, end) for line, end, _ in CC12M_LINES])
    got = read_subset(path, CC12M)
    pairs, skipped = _expected(CC12M_LINES)
    assert [(r["url"], r["caption"]) for r in got.pairs.to_pylist()] == pairs
    captions = [line.split(b"\t")[1] for line, _, e in CC12M_LINES if isinstance(e, tuple)]
    assert [c.encode() for c in got.pairs["caption"].to_pylist()] == captions
    assert got.skipped.counts == dict(sorted(skipped.items(), key=lambda kv: -kv[1]))
    assert got.skipped.examples["blank line"] == ["line 45", "line 46"]
    assert got.skipped.examples["invalid UTF-8"] == ["line 50"]
    assert got.record.rows_read == got.record.rows_selected == len(CC12M_LINES)


def test_cc3m_column_order_and_header_lines_detected_or_forced(tmp_path):
    rows = [(b'a "quoted" caption', b"https://x/1.jpg"), (b"<PERSON> at work", b"https://x/2.jpg")]
    cc3m = _write(tmp_path / "cc3m.tsv", [(c + b"\t" + u, b"\n") for c, u in rows])
    expected = [{"url": u.decode(), "caption": c.decode()} for c, u in rows]
    assert read_subset(cc3m, CC3M).pairs.to_pylist() == expected
    reader = open_url_list(cc3m, CC3M)
    assert (reader.header, reader.n_fields) == (False, 2)

    named = _write(
        tmp_path / "named.tsv",
        [(b"caption\turl", b"\n")] + [(c + b"\t" + u, b"\n") for c, u in rows],
    )
    assert open_url_list(named).header is True  # the named columns are in line 1
    assert read_subset(named).pairs.to_pylist() == expected
    assert read_subset(named, CC3M).pairs.to_pylist() == expected  # positions, header detected
    assert (
        read_subset(named, UrlListOptions(url_col=1, caption_col=0, header=True)).pairs.to_pylist()
        == expected
    )
    got = read_subset(named, UrlListOptions(url_col=1, caption_col=0, header=False))
    assert got.pairs.to_pylist() == [{"url": "url", "caption": "caption"}, *expected]
    assert read_subset(named).skipped.examples == {}
    assert open_url_list(named).where(0) == "line 2"


def test_csv_keeps_csv_quoting_but_never_merges_rows(tmp_path):
    lines = [
        b"url,caption",
        b'https://x/1.jpg,"""Best"" pizza, with a comma"',
        b'https://x/2.jpg,"an unclosed quote',
        b"https://x/3.jpg,plain caption",
        b'https://x/4.jpg,"Best" pizza',  # a stray quote after a closed one: not silently fixed
        b'https://x/5.jpg,a "quote" inside',
        b'https://x/6.jpg,"a value that spans',
        b'two lines"',
        b"https://x/7.jpg,caf\xc3\xa9",
        b"https://x/8.jpg,one,too many",
        b"",
        b'"https://x/9.jpg",""',
    ]
    path = _write(tmp_path / "list.csv", [(line, b"\r\n") for line in lines])
    got = read_subset(path)
    assert got.pairs.to_pylist() == [
        {"url": "https://x/1.jpg", "caption": '"Best" pizza, with a comma'},
        {"url": "https://x/3.jpg", "caption": "plain caption"},
        {"url": "https://x/5.jpg", "caption": 'a "quote" inside'},
        {"url": "https://x/7.jpg", "caption": "café"},
    ]
    assert got.skipped.counts == {
        "malformed line (bad CSV quoting)": 3,
        "malformed line (wrong number of fields)": 2,  # `two lines"` and the 3-field line
        "blank line": 1,
        "missing url or caption": 1,
    }
    assert got.skipped.examples["malformed line (bad CSV quoting)"] == [
        "line 3",
        "line 5",
        "line 7",
    ]


def test_laion_parquet_by_name_or_position_and_compressed_csv(tmp_path):
    laion = pa.table(
        {
            "SAMPLE_ID": [1, 2, 3],
            "URL": ["https://x/1.jpg", None, "https://x/3.jpg"],
            "TEXT": ['"Best" pizza', "no url", "  "],
            "similarity": [0.3, 0.4, 0.5],
        }
    )
    pq.write_table(laion, tmp_path / "laion.parquet")
    for options in (
        UrlListOptions(url_col="URL", caption_col="TEXT"),
        UrlListOptions(url_col=1, caption_col=2),
    ):
        got = read_subset(tmp_path / "laion.parquet", options)
        assert got.pairs.to_pylist() == [{"url": "https://x/1.jpg", "caption": '"Best" pizza'}]
        assert got.skipped.counts == {"missing url or caption": 2}
        assert got.skipped.examples["missing url or caption"] == ["row 1", "row 2"]
    with pytest.raises(UrlListError, match="did you mean url_col='URL'"):
        open_url_list(tmp_path / "laion.parquet")

    with gzip.open(tmp_path / "l.csv.gz", "wt") as f:
        f.write("url,caption\nhttp://x/1.jpg,one\n")
    assert read_subset(tmp_path / "l.csv.gz").pairs.num_rows == 1


def test_unreadable_url_lists_name_the_file_column_and_fix(tmp_path):
    with pytest.raises(UrlListError, match="nope.parquet"):
        download_pairs(tmp_path / "nope.parquet", tmp_path / "out")
    assert not (tmp_path / "out").exists()  # refused before the folder is touched
    pq.write_table(pa.table({"link": ["http://x/1.jpg"], "caption": ["c"]}), tmp_path / "a.parquet")
    with pytest.raises(UrlListError, match="no url column 'url'"):
        open_url_list(tmp_path / "a.parquet")
    with pytest.raises(UrlListError, match="header applies to csv and tsv"):
        open_url_list(tmp_path / "a.parquet", UrlListOptions(url_col="link", header=False))
    with pytest.raises(UrlListError, match="url_col=2 is out of range"):
        open_url_list(tmp_path / "a.parquet", UrlListOptions(url_col=2, caption_col=1))
    (tmp_path / "b.tsv").write_text("url\ttext\nhttp://x/1.jpg\tc\n")
    with pytest.raises(UrlListError, match="b.tsv has no caption column 'caption'"):
        open_url_list(tmp_path / "b.tsv")
    table = read_subset(tmp_path / "b.tsv", UrlListOptions(caption_col="text")).pairs
    assert table.to_pylist() == [{"url": "http://x/1.jpg", "caption": "c"}]
    (tmp_path / "c.json").write_text("{}")
    with pytest.raises(UrlListError, match="format 'json'"):
        open_url_list(tmp_path / "c.json")
    (tmp_path / "empty.tsv").write_bytes(b"")
    with pytest.raises(UrlListError, match="empty"):
        open_url_list(tmp_path / "empty.tsv", CC12M)

    cc12m = _write(tmp_path / "cc12m.tsv", [(b"https://x/1.jpg\tone", b"\n")])
    with pytest.raises(UrlListError, match="no header line .* url_col=0, caption_col=1"):
        open_url_list(cc12m)
    with pytest.raises(
        UrlListError, match=r"url column 1 \(0-based\) holds no url.*0 \(0-based\) does"
    ):
        open_url_list(cc12m, CC3M)
    with pytest.raises(UrlListError, match="caption_col=2 is out of range"):
        open_url_list(cc12m, UrlListOptions(url_col=0, caption_col=2))
    (tmp_path / "bad.tsv.gz").write_bytes(b"\x1f\x8b not gzip at all")
    with pytest.raises(UrlListError, match="bad.tsv.gz cannot be read"):
        open_url_list(tmp_path / "bad.tsv.gz", CC12M)
    assert issubclass(UrlListError, AsifError)  # a user error: retrying cannot help


def test_a_line_longer_than_the_limit_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(url_list_module, "BLOCK_BYTES", 64)
    monkeypatch.setattr(url_list_module, "MAX_LINE_BYTES", 256)
    path = _write(tmp_path / "l.tsv", [(b"https://x/1.jpg\tone", b"\n"), (b"x" * 1000, b"\n")])
    with pytest.raises(UrlListError, match="has a line over"):
        read_subset(path, CC12M)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"input_format": "json"}, "input_format must be one of"),
        ({"url_col": -1}, "url_col must be a column name or a 0-based position"),
        ({"caption_col": ""}, "caption_col must be a column name"),
        ({"url_col": True}, "url_col must be"),
        ({"url_col": 1, "caption_col": 1}, "the same column"),
        ({"limit": 5, "sample": 3}, "at most one of limit, sample and fraction"),
        ({"limit": 0}, "limit must be at least 1"),
        ({"sample": -2}, "sample must be at least 1"),
        ({"fraction": 0.0}, r"fraction must be in \(0, 1\]"),
        ({"fraction": 1.5}, "fraction must be in"),
        ({"start": -1}, "start must be at least 0"),
        ({"start": 5, "stop": 5}, "stop must be greater than start"),
    ],
)
def test_bad_url_list_options_are_refused_naming_the_parameter(options: dict, message: str):
    with pytest.raises(UrlListError, match=message):
        UrlListOptions(**options)


CAPTION_CHARS = st.characters(blacklist_characters="\t\n\r", blacklist_categories=("Cs",))
CAPTIONS = st.text(
    st.one_of(st.sampled_from("\"'<>«»“” "), CAPTION_CHARS), min_size=1, max_size=40
).filter(str.strip)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(captions=st.lists(CAPTIONS, min_size=1, max_size=30), crlf=st.booleans())
def test_tsv_captions_round_trip_byte_exact(tmp_path, monkeypatch, captions, crlf):
    monkeypatch.setattr(url_list_module, "BLOCK_BYTES", 97)  # lines cross block boundaries
    end = b"\r\n" if crlf else b"\n"
    rows = [(f"https://x/{i}.jpg\t{c}".encode(), end) for i, c in enumerate(captions)]
    got = read_subset(_write(tmp_path / "p.tsv", rows), CC12M)
    assert got.pairs["caption"].to_pylist() == captions
    assert got.skipped.counts == {}
