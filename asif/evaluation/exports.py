"""What one evaluation leaves on disk for a reader: CLIP_benchmark result files and their
merged CSV, the unknown-rate figure, and (for the paper's benchmarks) the table beside the
paper's figures with its PNG. Used by `asif evaluate` and the evaluate flow."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from asif.evaluation.clip_benchmark import build_csv, write_results
from asif.evaluation.evaluations_table import Row
from asif.evaluation.metrics import CLASSIFICATION
from asif.evaluation.paper import paper_plot, paper_table
from asif.evaluation.plots import Plot, unknown_plot
from asif.files import atomic_write_text


@dataclass(frozen=True)
class Exported:
    """The files written; `paper` is the markdown table when asked for."""

    results: list[Path]
    csv: Path
    plots: list[Plot] = field(default_factory=list)
    paper: str | None = None
    paper_path: Path | None = None


def export(rows: Sequence[Row], out_dir: str | Path, *, paper: bool = False) -> Exported:
    """Write `rows` (one setting: one row per benchmark) to `out_dir`: CLIP_benchmark JSONs
    under `clip_benchmark/`, `results.csv` merged from them, `unknown.png` for the
    classification rows, and with `paper` `paper.md` and `paper.png`."""
    out = Path(out_dir)
    results = write_results(rows, out / "clip_benchmark")
    csv = build_csv([out / "clip_benchmark"], out / "results.csv")
    classified = [r for r in rows if r["task"] == CLASSIFICATION]
    plots = []
    if classified:
        title = "Answering unknown below a threshold"
        plots.append(unknown_plot(classified, out / "unknown.png", title))
    if not paper:
        return Exported(results, csv, plots)
    table = paper_table(rows)
    plots.append(paper_plot(rows, out / "paper.png"))
    paper_path = atomic_write_text(out / "paper.md", table + "\n")
    return Exported(results, csv, plots, table, paper_path)
