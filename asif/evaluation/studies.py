"""Studies: accuracy vs number of anchors, a k x p sweep, and the template strategies (max vs
mean). Each varies one part of a base `EvalConfig` (by default the served settings), runs the
configs with `evaluate_version` (so its rows land in the evaluations table with `study` set),
and draws a PNG plot and a markdown table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from asif.evaluation.benchmarks import Benchmark
from asif.evaluation.embedding_cache import EmbeddingCache
from asif.evaluation.evaluate import EvalConfig, evaluate_version
from asif.evaluation.evaluations_table import EvaluationsTable, Row
from asif.evaluation.plots import Plot, anchors_plot, curve_plot, kp_heatmap
from asif.evaluation.report import SUMMARY_COLUMNS, markdown_table
from asif.model.zero_shot import STRATEGIES
from asif.store.table import AnchorTable

STUDIES = ("anchors", "kp", "strategy")


@dataclass(frozen=True)
class StudyOptions:
    """The grids of the studies (anchor counts above the table's size are dropped)."""

    anchor_counts: tuple[int, ...] = (10, 30, 100, 300, 1000, 3000, 10000)
    anchor_seeds: tuple[int, ...] = (0, 1, 2)
    ks: tuple[int, ...] = (5, 10, 25, 50, 100, 200, 800)
    ps: tuple[float, ...] = (1.0, 4.0, 8.0, 16.0)


@dataclass(frozen=True)
class StudyResult:
    """A study's rows, its plot and a markdown table of the rows."""

    name: str
    rows: list[Row]
    plot: Plot
    markdown: str


def anchor_configs(n_table: int, options: StudyOptions, base: EvalConfig) -> list[EvalConfig]:
    """Random anchor subsets of each count below `n_table` (one per seed), plus all anchors."""
    study = replace(base, study="anchors")
    counts = [n for n in options.anchor_counts if n < n_table]
    subsets = [
        replace(study, n_anchors=n, subset_seed=seed)
        for n in counts
        for seed in options.anchor_seeds
    ]
    return [*subsets, replace(study, n_anchors=None, subset_seed=0)]


def kp_configs(options: StudyOptions, base: EvalConfig) -> list[EvalConfig]:
    """Every (k, p) of the grid."""
    return [replace(base, k=k, p=p, study="kp") for k in options.ks for p in options.ps]


def strategy_configs(base: EvalConfig) -> list[EvalConfig]:
    """The base config with each template strategy."""
    return [replace(base, strategy=s, study="strategy") for s in STRATEGIES]


def run_study(
    name: str,
    table: AnchorTable,
    benchmarks: Sequence[Benchmark],
    out_dir: str | Path,
    *,
    cache: EmbeddingCache,
    evaluations: EvaluationsTable | None = None,
    options: StudyOptions = StudyOptions(),
    base: EvalConfig | None = None,
    force: bool = False,
    run_id: str | None = None,
) -> StudyResult:
    """Run study `name` (one of `STUDIES`) on the table's version, varying `base` (default
    `EvalConfig()`: the served settings); plot to `out_dir`."""
    base = base or EvalConfig()
    if name == "anchors":
        configs = anchor_configs(len(table), options, base)
    elif name == "kp":
        configs = kp_configs(options, base)
    elif name == "strategy":
        configs = strategy_configs(base)
    else:
        raise ValueError(f"unknown study {name!r}; one of {STUDIES}")
    rows = evaluate_version(
        table,
        benchmarks,
        configs,
        cache=cache,
        evaluations=evaluations,
        force=force,
        run_id=run_id,
    )
    path = Path(out_dir) / f"{table.name}-v{table.version}-{name}.png"
    if name == "anchors":
        plot = anchors_plot(rows, path)
    elif name == "kp":
        plot = kp_heatmap(rows, path)
    else:
        plot = curve_plot(rows, path, "Template strategies: accuracy vs unknown rate")
    columns = SUMMARY_COLUMNS if name != "anchors" else (*SUMMARY_COLUMNS, "subset_seed")
    return StudyResult(name, rows, plot, markdown_table(rows, columns))
