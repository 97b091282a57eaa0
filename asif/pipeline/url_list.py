"""Url lists: parquet, csv or tsv files of (image url, caption) pairs, the input of a download."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from asif.errors import AsifError

INPUT_FORMATS = ("parquet", "csv", "tsv")


class UrlListError(AsifError, ValueError):
    """A url list that cannot be read, or lacks the url or caption column."""


def read_url_list(
    url_list: str | Path,
    *,
    input_format: str | None = None,
    url_col: str = "url",
    caption_col: str = "caption",
) -> pa.Table:
    """Read a parquet/csv/tsv url list as a (url, caption) string table.

    The format comes from the suffix unless given (`.csv.gz` and `.tsv.gz` work too).
    Raises `UrlListError` naming the file or the missing column.
    """
    path = Path(url_list)
    if not path.is_file():
        raise UrlListError(f"url list {path} does not exist or is not a file")
    fmt = input_format or _infer_format(path)
    if fmt not in INPUT_FORMATS:
        raise UrlListError(f"url list {path}: format {fmt!r} is not one of {INPUT_FORMATS}")
    try:
        if fmt == "parquet":
            names = pq.read_schema(path).names
            _check_columns(path, names, url_col, caption_col)
            table = pq.read_table(path, columns=[url_col, caption_col])
        else:
            delimiter = "\t" if fmt == "tsv" else ","
            table = pacsv.read_csv(
                path,
                parse_options=pacsv.ParseOptions(delimiter=delimiter),
                convert_options=pacsv.ConvertOptions(
                    column_types={url_col: pa.string(), caption_col: pa.string()}
                ),
            )
            _check_columns(path, table.column_names, url_col, caption_col)
    except (pa.ArrowInvalid, OSError) as err:
        raise UrlListError(f"url list {path} cannot be read as {fmt}: {err}") from err
    return pa.table(
        {
            "url": table[url_col].cast(pa.string()),
            "caption": table[caption_col].cast(pa.string()),
        }
    )


def _non_blank(column: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.fill_null(pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(column)), 0), False)


def _infer_format(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    if not suffixes:
        raise UrlListError(f"url list {path}: cannot infer the format, pass input_format")
    return suffixes[-1].lstrip(".")


def _check_columns(path: Path, names: list[str], url_col: str, caption_col: str) -> None:
    for col, what in ((url_col, "url"), (caption_col, "caption")):
        if col not in names:
            raise UrlListError(f"url list {path} has no {what} column {col!r} (columns: {names})")


def drop_blank_pairs(pairs: pa.Table) -> tuple[pa.Table, int]:
    """The (url, caption) rows that have both, and how many rows lacked (or left blank) one."""
    valid = pc.and_(_non_blank(pairs["url"]), _non_blank(pairs["caption"]))
    kept = pairs.filter(valid)
    return kept, pairs.num_rows - kept.num_rows
