"""Markdown for evaluation results: tables of rows, and a PNG inlined as a data URI."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from pathlib import Path

from asif.evaluation.evaluations_table import Row
from asif.evaluation.metrics import CLASSIFICATION, RECALL_KS, RETRIEVAL

SUMMARY_COLUMNS = (
    "benchmark",
    "table_version",
    "n_anchors",
    "k",
    "p",
    "strategy",
    "n_images",
    "acc1",
    "acc5",
    "mean_per_class_recall",
)
RETRIEVAL_COLUMNS = (
    "benchmark",
    "table_version",
    "n_anchors",
    "k",
    "p",
    "n_images",
    "n_texts",
    *(f"{side}_retrieval_recall_at_{k}" for side in ("image", "text") for k in RECALL_KS),
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


def row_summary(row: Row) -> str:
    """One line: the version, the benchmark and its headline metrics."""
    where = f"{row['table_name']} v{row['table_version']} on {row['benchmark']}"
    if row["task"] == RETRIEVAL:
        recalls = "/".join(f"{row[f'image_retrieval_recall_at_{k}']:.4f}" for k in RECALL_KS)
        texts = "/".join(f"{row[f'text_retrieval_recall_at_{k}']:.4f}" for k in RECALL_KS)
        ks = "/".join(map(str, RECALL_KS))
        return f"{where}: image recall@{ks} {recalls}, text recall@{ks} {texts}"
    return (
        f"{where}: acc1 {row['acc1']:.4f}, acc5 {row['acc5']:.4f}, "
        f"mean per-class recall {row['mean_per_class_recall']:.4f}"
    )


def results_markdown(rows: Sequence[Row]) -> str:
    """The classification rows' table, then the retrieval rows' (each only if any)."""
    tables = [
        markdown_table(chosen, columns)
        for task, columns in (
            (CLASSIFICATION, SUMMARY_COLUMNS),
            (RETRIEVAL, RETRIEVAL_COLUMNS),
        )
        if (chosen := [r for r in rows if r["task"] == task])
    ]
    return "\n\n".join(tables)


def image_markdown(path: str | Path, alt: str = "plot") -> str:
    """The PNG at `path` inlined as a base64 data URI, with its path written under it."""
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f"![{alt}](data:image/png;base64,{data})\n\n`{path}`"
