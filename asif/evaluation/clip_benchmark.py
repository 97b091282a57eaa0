"""Evaluation rows as CLIP_benchmark's result files, so ASIF's numbers merge with open_clip's.

`clip_benchmark eval` writes one JSON per (dataset, model, pretrained, language, task) named
``{dataset}_{pretrained}_{model}_{language}_{task}.json`` holding ``dataset``, ``model``,
``pretrained``, ``task``, ``metrics`` and ``language``; `clip_benchmark build` merges them
into one CSV whose columns are the metrics, the other keys and ``model_fullname`` (model and
pretrained). Here the model is ASIF over its two encoders and "pretrained" is the anchor
table version (`<table>-v<version>`), the data the model is made of; the extra keys say the
rest: table uri, version and tags, anchor count, k, p, strategy, encoders, split, images.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

from asif.evaluation.benchmarks import file_safe
from asif.evaluation.evaluations_table import Row
from asif.evaluation.metrics import CLASSIFICATION, RECALL_KS, RETRIEVAL
from asif.files import atomic_write_text

LANGUAGE = "en"
METRICS = {
    CLASSIFICATION: ("acc1", "acc5", "mean_per_class_recall"),
    RETRIEVAL: tuple(
        f"{side}_retrieval_recall@{k}" for side in ("image", "text") for k in RECALL_KS
    ),
}
EXTRA = (
    "table_uri", "table_name", "table_version", "table_tags", "n_anchors", "k", "p",
    "strategy", "image_encoder", "text_encoder", "split", "n_images", "n_texts",
    "benchmark_key", "evaluated_at",
)  # fmt: skip


def model_name(row: Row) -> str:
    return f"asif:{row['image_encoder']}+{row['text_encoder']}"


def pretrained_name(row: Row) -> str:
    return f"{row['table_name']}-v{row['table_version']}"


def record(row: Row) -> dict:
    """One evaluations row as a CLIP_benchmark result (plus ASIF's extra keys)."""
    metrics = {m: row[m.replace("@", "_at_")] for m in METRICS[row["task"]]}
    extra = {key: row.get(key) for key in EXTRA}
    extra["evaluated_at"] = str(extra["evaluated_at"]) if extra["evaluated_at"] else None
    return {
        "dataset": row["benchmark"],
        "model": model_name(row),
        "pretrained": pretrained_name(row),
        "task": row["task"],
        "metrics": {k: (float(v) if v is not None else math.nan) for k, v in metrics.items()},
        "language": LANGUAGE,
        **extra,
    }


def file_name(result: dict) -> str:
    """CLIP_benchmark's default output name, in file-safe characters."""
    parts = (result["dataset"], result["pretrained"], result["model"], LANGUAGE, result["task"])
    return "_".join(file_safe(p) for p in parts) + ".json"


def write_results(rows: Sequence[Row], out_dir: str | Path) -> list[Path]:
    """One CLIP_benchmark JSON per row (a dataset and table version) in `out_dir`.

    Two rows that would write the same file (the same benchmark and version measured with
    other settings) are refused: export one setting at a time."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = [record(r) for r in rows]
    names = [file_name(r) for r in results]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        raise ValueError(f"several rows would write {clashes}: export one setting at a time")
    paths = []
    for name, result in zip(names, results, strict=True):
        atomic_write_text(out / name, json.dumps(result, indent=1))
        paths.append(out / name)
    return paths


def build_csv(files: Iterable[str | Path], output: str | Path) -> Path:
    """Merge CLIP_benchmark result files (or folders of them) into one CSV, as
    `clip_benchmark build` does: metrics, then the other keys, then `model_fullname`;
    columns in order of first appearance (clip_benchmark's own order is a set's)."""
    rows: list[dict] = []
    for path in map(Path, files):
        for file in sorted(path.glob("*.json")) if path.is_dir() else [path]:
            data = json.loads(file.read_text())
            row = {**data["metrics"], **{k: v for k, v in data.items() if k != "metrics"}}
            row["model_fullname"] = f"{row['model']} {row['pretrained']}"
            rows.append(row)
    columns = list(dict.fromkeys(k for row in rows for k in row))
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(output, text.getvalue())
    return output
