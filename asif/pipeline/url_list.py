"""Url lists: parquet, csv or tsv files of (image url, caption) pairs, read in bounded chunks.

Tab-separated lists (CC12M's `url<TAB>caption`, CC3M's `caption<TAB>url`) are read without
quote processing: their captions hold arbitrary quotes, and a CSV parser lets one caption that
opens a `"` swallow the rows after it. Each line is one row, split on TAB; the caption is
byte-exact (only the `\\n` or `\\r\\n` ending is removed). CSV keeps CSV quoting, but a value
cannot span lines: a broken quote costs its own line, never the rows after it. Unusable rows
are never merged or dropped silently: each chunk says, per row, why it is unusable.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from asif.errors import AsifError

INPUT_FORMATS = ("parquet", "csv", "tsv")
USABLE = 0
BLANK_LINE, WRONG_FIELDS, BAD_QUOTING, INVALID_UTF8, MISSING = 1, 2, 3, 4, 5
SKIP_REASONS = (
    "",
    "blank line",
    "malformed line (wrong number of fields)",
    "malformed line (bad CSV quoting)",
    "invalid UTF-8",
    "missing url or caption",
)
"""Why a row is unusable, indexed by the codes above (0: usable)."""

BLOCK_BYTES = 1 << 20
"""Bytes of a csv/tsv list read at a time: one chunk of rows."""
MAX_LINE_BYTES = 64 << 20
"""A longer line means the file is no url list (and would hold memory unbounded)."""
PARQUET_ROWS = 65_536
"""Rows of a parquet list read at a time."""
SNIFF_ROWS = 1000
"""Leading lines that decide a headerless list's number of fields and check its url column."""
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_GZIP_MAGIC = b"\x1f\x8b"
_BOM = b"\xef\xbb\xbf"


class UrlListError(AsifError, ValueError):
    """A url list that cannot be read, lacks a column, or options that cannot apply to it."""


@dataclass(frozen=True)
class UrlListOptions:
    """How to read a url list and which of its rows to take.

    `input_format` defaults to the suffix (`.gz` ignored). `header=None` detects it: a first
    line holding the named columns, or no url, is a header. Columns are names or 0-based
    positions (a headerless list needs positions: CC12M `url_col=0, caption_col=1`, CC3M
    `url_col=1, caption_col=0`; LAION parquet `url_col="URL", caption_col="TEXT"`).
    Rows are 0-based data rows (lines after the header; unusable ones count): `start`/`stop`
    take a range, then at most one of `limit` (its first N rows), `sample` (N random rows)
    or `fraction` (each row with that probability), random ones drawn from `seed` and the row
    index, so the same options pick the same rows of the same file.
    """

    __pydantic_config__ = {"extra": "forbid"}  # a flow parameter: no unknown keys

    input_format: str | None = None
    header: bool | None = None
    url_col: str | int = "url"
    caption_col: str | int = "caption"
    limit: int | None = None
    sample: int | None = None
    fraction: float | None = None
    seed: int = 0
    start: int = 0
    stop: int | None = None

    def __post_init__(self) -> None:
        if self.input_format is not None and self.input_format not in INPUT_FORMATS:
            raise UrlListError(
                f"input_format must be one of {INPUT_FORMATS} or None, not {self.input_format!r}"
            )
        for name in ("url_col", "caption_col"):
            col = getattr(self, name)
            named = isinstance(col, str) and col != ""
            placed = isinstance(col, int) and not isinstance(col, bool) and col >= 0
            if not (named or placed):
                raise UrlListError(f"{name} must be a column name or a 0-based position: {col!r}")
        if self.url_col == self.caption_col:
            raise UrlListError(f"url_col and caption_col are the same column: {self.url_col!r}")
        chosen = [n for n in ("limit", "sample", "fraction") if getattr(self, n) is not None]
        if len(chosen) > 1:
            raise UrlListError(f"at most one of limit, sample and fraction, not {chosen}")
        for name in ("limit", "sample"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or value < 1):
                raise UrlListError(f"{name} must be at least 1, not {value!r}")
        if self.fraction is not None and not 0 < self.fraction <= 1:
            raise UrlListError(f"fraction must be in (0, 1], not {self.fraction!r}")
        if self.start < 0:
            raise UrlListError(f"start must be at least 0, not {self.start}")
        if self.stop is not None and self.stop <= self.start:
            raise UrlListError(f"stop must be greater than start ({self.start}), not {self.stop}")


@dataclass(frozen=True)
class RowChunk:
    """Consecutive data rows `first`, `first + 1`, ... of a url list.

    `pairs` has `url` and `caption` strings, null where `reasons` (a code of `SKIP_REASONS`
    per row) says the row is unusable.
    """

    first: int
    pairs: pa.Table
    reasons: np.ndarray

    @property
    def num_rows(self) -> int:
        """Rows in the chunk, usable or not."""
        return len(self.reasons)


class UrlListReader(ABC):
    """An opened url list: its format, header and columns, read as `RowChunk`s."""

    def __init__(self, path: Path, input_format: str) -> None:
        self.path = path
        self.input_format = input_format
        self.rows_read = 0
        """Data rows gone through by the last `chunks` (skipped ones before `start` too)."""

    @abstractmethod
    def chunks(self, start: int = 0, stop: int | None = None) -> Iterator[RowChunk]:
        """The rows `start` (0-based) to `stop` (excluded; None: the end), a chunk at a time."""

    @abstractmethod
    def where(self, row: int) -> str:
        """Where data row `row` is in the file, for messages ("line 18", "row 17")."""


def open_url_list(
    url_list: str | Path, options: UrlListOptions = UrlListOptions()
) -> UrlListReader:
    """Open a url list, check its columns (and header); raises `UrlListError` naming the file."""
    path = Path(url_list)
    if not path.is_file():
        raise UrlListError(f"url list {path} does not exist or is not a file")
    fmt = options.input_format or _infer_format(path)
    if fmt not in INPUT_FORMATS:
        raise UrlListError(f"url list {path}: format {fmt!r} is not one of {INPUT_FORMATS}")
    if fmt == "parquet":
        return _ParquetReader(path, options)
    return _TextReader(path, fmt, options)


def looks_like_url(value: str) -> bool:
    """Whether `value` starts with a url scheme (`https://`, `file://`, ...)."""
    return _URL.match(value) is not None


def _infer_format(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    if not suffixes:
        raise UrlListError(f"url list {path}: cannot infer the format, pass input_format")
    return suffixes[-1].lstrip(".")


def _column_error(path: Path, what: str, col: str, names: list[str]) -> UrlListError:
    near = [n for n in names if n.lower() == col.lower()]
    hint = f"; did you mean {what}_col={near[0]!r}?" if near else ""
    return UrlListError(f"url list {path} has no {what} column {col!r} (columns: {names}){hint}")


def _check_url_column(path: Path, urls: list[str], url_desc: str, others: dict[str, str]) -> None:
    """Refuse a url column that holds no url in the list's first usable rows (swapped columns)."""
    if not urls or any(looks_like_url(u) for u in urls):
        return
    with_urls = [desc for desc, value in others.items() if looks_like_url(value)]
    hint = f"; {with_urls[0]} does" if with_urls else ""
    raise UrlListError(
        f"url list {path}: url column {url_desc} holds no url in its first {len(urls)} usable "
        f"rows (first: {urls[0][:80]!r}){hint}: choose url_col and caption_col"
    )


class _TextReader(UrlListReader):
    """csv and tsv lists, one row per line (gzip-compressed or not)."""

    def __init__(self, path: Path, input_format: str, options: UrlListOptions) -> None:
        super().__init__(path, input_format)
        self._split = _split_tsv if input_format == "tsv" else _split_csv
        lines = next(self._blocks(), [])
        if not lines:
            raise UrlListError(f"url list {path} is empty")
        first = self._split(lines[0])
        self.header = self._detect_header(first, options)
        self.columns = (first or []) if self.header else None
        sniffed = [f for f in map(self._split, lines[int(self.header) :][:SNIFF_ROWS]) if f]
        if self.columns is not None:
            self.n_fields = len(self.columns)
        else:
            counts = Counter(map(len, sniffed))
            self.n_fields = counts.most_common(1)[0][0] if counts else 0
        self.url_index = self._index(options.url_col, "url", lines[0])
        self.caption_index = self._index(options.caption_col, "caption", lines[0])
        complete = [f for f in sniffed if len(f) == self.n_fields]
        urls = [f[self.url_index] for f in complete if f[self.url_index].strip()]
        others = {
            self._describe(i): v
            for i, v in enumerate(complete[0] if complete else [])
            if i != self.url_index
        }
        _check_url_column(path, urls, self._describe(self.url_index), others)

    def _describe(self, index: int) -> str:
        return repr(self.columns[index]) if self.columns else f"{index} (0-based)"

    @staticmethod
    def _detect_header(first: list[str] | None, options: UrlListOptions) -> bool:
        if options.header is not None:
            return options.header
        if first is None:  # a blank or unparseable first line is no header
            return False
        names = [c for c in (options.url_col, options.caption_col) if isinstance(c, str)]
        if names and all(n in first for n in names):
            return True
        return not any(looks_like_url(f) for f in first)

    def _index(self, col: str | int, what: str, first_line: bytes) -> int:
        if isinstance(col, int):
            if col >= self.n_fields:
                raise UrlListError(
                    f"url list {self.path}: {what}_col={col} is out of range, its lines have "
                    f"{self.n_fields} field(s)"
                )
            return col
        if self.columns is None:
            shown = first_line[:80].decode("utf-8", "replace")
            raise UrlListError(
                f"url list {self.path} has no header line (line 1: {shown!r}): choose the "
                "columns by 0-based position, e.g. url_col=0, caption_col=1 for CC12M's "
                "url<TAB>caption or url_col=1, caption_col=0 for CC3M's caption<TAB>url"
            )
        if col not in self.columns:
            raise _column_error(self.path, what, col, self.columns)
        return self.columns.index(col)

    def where(self, row: int) -> str:
        return f"line {row + 1 + int(self.header)}"

    def chunks(self, start: int = 0, stop: int | None = None) -> Iterator[RowChunk]:
        row = -int(self.header)  # the header line is row -1
        self.rows_read = 0
        for lines in self._blocks():
            if row < 0:
                lines, row = lines[1:], 0
            lo = max(start - row, 0)
            hi = len(lines) if stop is None else min(stop - row, len(lines))
            if lo < hi:
                yield self._chunk(row + lo, lines[lo:hi])
            row += len(lines)
            self.rows_read = row if stop is None else min(row, stop)
            if stop is not None and row >= stop:
                return

    def _chunk(self, first: int, lines: list[bytes]) -> RowChunk:
        """Each line's url and caption (null if unusable) and its `SKIP_REASONS` code."""
        urls: list[str | None] = []
        captions: list[str | None] = []
        reasons: list[int] = []
        parse = _parse_tsv_line if self._split is _split_tsv else _parse_csv_line
        n, u, c = self.n_fields, self.url_index, self.caption_index
        for line in lines:
            if not line or line.isspace():
                code, url, caption = BLANK_LINE, None, None
            else:
                code, url, caption = parse(line, n, u, c)
            urls.append(url)
            captions.append(caption)
            reasons.append(code)
        pairs = pa.table(
            {"url": pa.array(urls, pa.string()), "caption": pa.array(captions, pa.string())}
        )
        return RowChunk(first, pairs, np.array(reasons, dtype=np.uint8))

    def _blocks(self) -> Iterator[list[bytes]]:
        """The file's lines without their `\\n` or `\\r\\n`, a block at a time."""
        try:
            with self._open() as f:
                rest = f.read(len(_BOM)).removeprefix(_BOM)
                while block := f.read(BLOCK_BYTES):
                    lines = (rest + block).split(b"\n")
                    rest = lines.pop()
                    if len(rest) > MAX_LINE_BYTES:
                        raise UrlListError(
                            f"url list {self.path} has a line over {MAX_LINE_BYTES >> 20} MiB: "
                            "not a url list"
                        )
                    if lines:
                        yield [line.removesuffix(b"\r") for line in lines]
                if rest:
                    yield [rest.removesuffix(b"\r")]
        except (OSError, EOFError) as err:  # gzip.BadGzipFile is an OSError
            raise UrlListError(f"url list {self.path} cannot be read: {err}") from err

    def _open(self) -> io.BufferedIOBase:
        with self.path.open("rb") as f:
            compressed = f.read(2) == _GZIP_MAGIC
        return gzip.open(self.path, "rb") if compressed else self.path.open("rb")


def _split_tsv(line: bytes) -> list[str] | None:
    """A line's fields as text (header and sniffing only), None if it is blank."""
    if not line or line.isspace():
        return None
    return [f.decode("utf-8", "replace") for f in line.split(b"\t")]


def _split_csv(line: bytes) -> list[str] | None:
    """A line's fields as text (header and sniffing only), None if blank or unparseable."""
    if not line or line.isspace():
        return None
    try:
        return next(csv.reader((line.decode("utf-8", "replace"),), strict=True))
    except csv.Error:
        return None


def _pair(url: str, caption: str) -> tuple[int, str | None, str | None]:
    if url.strip() and caption.strip():
        return USABLE, url, caption
    return MISSING, None, None


def _parse_tsv_line(line: bytes, n: int, u: int, c: int) -> tuple[int, str | None, str | None]:
    fields = line.split(b"\t")
    if len(fields) != n:
        return WRONG_FIELDS, None, None
    try:
        return _pair(fields[u].decode(), fields[c].decode())
    except UnicodeDecodeError:
        return INVALID_UTF8, None, None


def _parse_csv_line(line: bytes, n: int, u: int, c: int) -> tuple[int, str | None, str | None]:
    try:
        text = line.decode()
    except UnicodeDecodeError:
        return INVALID_UTF8, None, None
    try:
        fields = next(csv.reader((text,), strict=True))
    except csv.Error:  # an unclosed or stray quote, or a bare \r outside quotes
        return BAD_QUOTING, None, None
    if len(fields) != n:
        return WRONG_FIELDS, None, None
    return _pair(fields[u], fields[c])


class _ParquetReader(UrlListReader):
    """Parquet lists, read by row group and batch (row groups before `start` are not read)."""

    def __init__(self, path: Path, options: UrlListOptions) -> None:
        super().__init__(path, "parquet")
        if options.header is not None:
            raise UrlListError(f"url list {path}: header applies to csv and tsv lists only")
        try:
            self._file = pq.ParquetFile(path)
        except (pa.ArrowInvalid, OSError) as err:
            raise UrlListError(f"url list {path} cannot be read as parquet: {err}") from err
        schema = self._file.schema_arrow
        self.columns = schema.names
        self.url_name = self._name(options.url_col, "url")
        self.caption_name = self._name(options.caption_col, "caption")
        first = next(self.chunks(0, SNIFF_ROWS), None)
        self.rows_read = 0
        if first is None:
            return
        urls = [u for u in first.pairs["url"].to_pylist() if u is not None]
        texts = [
            f.name
            for f in schema
            if f.name != self.url_name
            and (pa.types.is_string(f.type) or pa.types.is_large_string(f.type))
        ]
        row = next(self._file.iter_batches(1, columns=texts)).to_pylist()[0] if texts else {}
        others = {repr(k): str(v) for k, v in row.items()}
        _check_url_column(path, urls, repr(self.url_name), others)

    def _name(self, col: str | int, what: str) -> str:
        if isinstance(col, int):
            if col >= len(self.columns):
                raise UrlListError(
                    f"url list {self.path}: {what}_col={col} is out of range, it has "
                    f"{len(self.columns)} column(s): {self.columns}"
                )
            return self.columns[col]
        if col not in self.columns:
            raise _column_error(self.path, what, col, self.columns)
        return col

    def where(self, row: int) -> str:
        return f"row {row}"

    def chunks(self, start: int = 0, stop: int | None = None) -> Iterator[RowChunk]:
        meta = self._file.metadata
        sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
        offsets = np.cumsum([0, *sizes]).tolist()
        end = offsets[-1] if stop is None else min(stop, offsets[-1])
        groups = [i for i in range(len(sizes)) if offsets[i] < end and offsets[i + 1] > start]
        self.rows_read = 0 if groups else max(end, 0)
        if not groups:
            return
        row = offsets[groups[0]]
        columns = [self.url_name, self.caption_name]
        try:
            for batch in self._file.iter_batches(
                PARQUET_ROWS, row_groups=groups, columns=columns, use_threads=False
            ):
                lo, hi = max(start - row, 0), min(end - row, batch.num_rows)
                if lo < hi:
                    part = batch.slice(lo, hi - lo)
                    yield _parquet_chunk(row + lo, part[self.url_name], part[self.caption_name])
                row += batch.num_rows
                self.rows_read = min(row, end)
                if row >= end:
                    return
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as err:
            raise UrlListError(f"url list {self.path} cannot be read as parquet: {err}") from err


def _parquet_chunk(first: int, url: pa.Array, caption: pa.Array) -> RowChunk:
    url, caption = pc.cast(url, pa.string()), pc.cast(caption, pa.string())
    usable = pc.and_(_non_blank(url), _non_blank(caption))
    null = pa.scalar(None, pa.string())
    pairs = pa.table(
        {"url": pc.if_else(usable, url, null), "caption": pc.if_else(usable, caption, null)}
    )
    reasons = np.where(usable.to_numpy(zero_copy_only=False), USABLE, MISSING).astype(np.uint8)
    return RowChunk(first, pairs, reasons)


def _non_blank(column: pa.Array) -> pa.Array:
    return pc.fill_null(pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(column)), 0), False)
