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
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from asif.evaluation.evaluations_table import Row  # noqa: E402
from asif.files import atomic_write_text  # noqa: E402

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
    return with_sidecar(Plot(path, title, xlabel, ylabel, series))


def with_sidecar(plot: Plot) -> Plot:
    """Write the plot's data beside its PNG."""
    data = {"title": plot.title, "xlabel": plot.xlabel, "ylabel": plot.ylabel}
    atomic_write_text(plot.sidecar, json.dumps({**data, "series": plot.series}))
    return plot


def _mean_by(rows: Sequence[Row], label: Callable[[Row], str], x: str, y: str = "acc1") -> Series:
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


def kp_heatmap(rows: Sequence[Row], path: str | Path) -> Plot:
    """Top-1 accuracy over the k x p grid as a heat map, one panel per benchmark; the series
    (per benchmark and p, acc1 against k) are the cells drawn."""
    series = _mean_by(rows, lambda r: f"{r['benchmark']} p={r['p']:g}", "k")
    benchmarks = sorted({r["benchmark"] for r in rows})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(
        1, max(len(benchmarks), 1), figsize=(5.2 * max(len(benchmarks), 1), 4.2), squeeze=False
    )
    try:
        for ax, name in zip(axes[0], benchmarks, strict=False):
            ks = sorted({r["k"] for r in rows if r["benchmark"] == name})
            ps = sorted({r["p"] for r in rows if r["benchmark"] == name})
            grid = np.full((len(ps), len(ks)), np.nan)
            for i, p in enumerate(ps):
                line = series[f"{name} p={p:g}"]
                for x, y in zip(line["x"], line["y"], strict=True):
                    grid[i, ks.index(int(x))] = y
            image = ax.imshow(grid, cmap="viridis", aspect="auto", origin="lower")
            ax.set_xticks(range(len(ks)), [str(k) for k in ks])
            ax.set_yticks(range(len(ps)), [f"{p:g}" for p in ps])
            for (i, j), value in np.ndenumerate(grid):
                if not np.isnan(value):
                    ax.text(j, i, f"{100 * value:.1f}", ha="center", va="center", fontsize=7,
                            color="white" if value < np.nanmean(grid) else "black")  # fmt: skip
            ax.set(title=f"{name}: top-1 accuracy (%)", xlabel="k", ylabel="p")
            fig.colorbar(image, ax=ax)
        fig.tight_layout()
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)
    return with_sidecar(Plot(path, "Accuracy over k and p", "k", "p", series))


def unknown_plot(rows: Sequence[Row], path: str | Path, title: str) -> Plot:
    """The paper's unknown figure: accuracy, unknown and wrong rates against the threshold
    (answer "unknown" below it), three lines per row (a benchmark)."""
    series = {
        f"{r['benchmark']} {rate}": {"x": list(r["thresholds"]), "y": list(r[f"curve_{rate}"])}
        for r in rows
        for rate in ("accuracy", "unknown", "wrong")
    }
    return line_plot(series, path, title=title, xlabel="threshold", ylabel="rate")


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
