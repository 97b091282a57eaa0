"""PNG plots of evaluation rows (matplotlib, Agg), each with a sidecar JSON of its series.

Every plot function returns a `Plot` whose `series` (label -> x and y lists) is exactly what
was drawn; the same series are written next to the PNG as `<name>.json`.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from asif.evaluation.evaluations_table import Row  # noqa: E402

Series = dict[str, dict[str, list[float]]]


@dataclass(frozen=True)
class Plot:
    """A written PNG and the series drawn in it."""

    path: Path
    title: str
    xlabel: str
    ylabel: str
    series: Series

    @property
    def sidecar(self) -> Path:
        return self.path.with_suffix(".json")


def line_plot(
    series: Series, path: str | Path, *, title: str, xlabel: str, ylabel: str, logx: bool = False
) -> Plot:
    """Draw one line per series (sorted by label) and write the PNG and its JSON sidecar."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=100)
    try:
        for label in sorted(series):
            ax.plot(series[label]["x"], series[label]["y"], marker="o", markersize=3, label=label)
        if logx:
            ax.set_xscale("log")
            ticks = sorted({x for s in series.values() for x in s["x"]})
            ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
            ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
        ax.grid(alpha=0.3)
        if series:
            ax.legend(fontsize="small")
        fig.tight_layout()
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)
    plot = Plot(path, title, xlabel, ylabel, series)
    plot.sidecar.write_text(
        json.dumps({"title": title, "xlabel": xlabel, "ylabel": ylabel, "series": series})
    )
    return plot


def _mean_by(rows: Sequence[Row], label: Callable[[Row], str], x: str, y: str = "top1") -> Series:
    """Per label, y averaged over rows with the same x (e.g. over subset seeds), by x."""
    points: dict[str, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        points[label(row)][row[x]].append(row[y])
    return {
        name: {"x": sorted(by_x), "y": [sum(by_x[v]) / len(by_x[v]) for v in sorted(by_x)]}
        for name, by_x in points.items()
    }


def anchors_plot(rows: Sequence[Row], path: str | Path) -> Plot:
    """Top-1 accuracy against the number of anchors (mean over random subsets)."""
    series = _mean_by(rows, lambda r: f"{r['benchmark']} ({r['strategy']})", "n_anchors")
    return line_plot(
        series,
        path,
        title="Zero-shot accuracy vs number of anchors",
        xlabel="anchors",
        ylabel="top-1 accuracy",
        logx=True,
    )


def kp_plot(rows: Sequence[Row], path: str | Path) -> Plot:
    """Top-1 accuracy against k, one line per (benchmark, p)."""
    series = _mean_by(rows, lambda r: f"{r['benchmark']} p={r['p']:g}", "k")
    return line_plot(
        series, path, title="Accuracy vs k and p", xlabel="k", ylabel="top-1 accuracy", logx=True
    )


def curve_plot(rows: Sequence[Row], path: str | Path, title: str) -> Plot:
    """Accuracy against unknown rate (the threshold curve), one line per row."""
    series = {
        f"{r['benchmark']} v{r['table_version']} {r['strategy']} k={r['k']} p={r['p']:g}": {
            "x": list(r["curve_unknown"]),
            "y": list(r["curve_accuracy"]),
        }
        for r in rows
    }
    return line_plot(series, path, title=title, xlabel="unknown rate", ylabel="accuracy")
