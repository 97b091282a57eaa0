"""Markdown for evaluation results: tables of rows, and a PNG inlined as a data URI."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from pathlib import Path

from asif.evaluation.evaluations_table import Row

SUMMARY_COLUMNS = (
    "benchmark",
    "table_version",
    "n_anchors",
    "k",
    "p",
    "strategy",
    "n_images",
    "top1",
    "top5",
)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "" if value is None else str(value).replace("|", "\\|")


def markdown_table(rows: Sequence[Row], columns: Sequence[str] = SUMMARY_COLUMNS) -> str:
    """A markdown table of `columns` of `rows`."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def image_markdown(path: str | Path, alt: str = "plot") -> str:
    """The PNG at `path` inlined as a base64 data URI, with its path written under it."""
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f"![{alt}](data:image/png;base64,{data})\n\n`{path}`"
