"""Studies: accuracy vs number of anchors, a k x p sweep, and the template strategies (max vs
mean). Each is a list of `EvalConfig`s run by `evaluate_version` (so its rows land in the
evaluations table with `study` set), a PNG plot and a markdown table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from asif.evaluation.benchmarks import Benchmark
from asif.evaluation.embedding_cache import EmbeddingCache
from asif.evaluation.evaluate import EvalConfig, evaluate_version
from asif.evaluation.evaluations_table import EvaluationsTable, Row
from asif.evaluation.plots import Plot, anchors_plot, curve_plot, kp_plot
from asif.evaluation.report import SUMMARY_COLUMNS, markdown_table
from asif.model.zero_shot import STRATEGIES, Strategy
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


def anchor_configs(
    n_table: int, options: StudyOptions, k: int, p: float, strategy: Strategy
) -> list[EvalConfig]:
    """Random anchor subsets of each count below `n_table` (one per seed), plus all anchors."""
    counts = [n for n in options.anchor_counts if n < n_table]
    configs = [
        EvalConfig(k, p, strategy, n, seed, "anchors")
        for n in counts
        for seed in options.anchor_seeds
    ]
    return [*configs, EvalConfig(k, p, strategy, None, 0, "anchors")]


def kp_configs(options: StudyOptions, strategy: Strategy) -> list[EvalConfig]:
    """Every (k, p) of the grid."""
    return [EvalConfig(k, p, strategy, study="kp") for k in options.ks for p in options.ps]


def strategy_configs(k: int, p: float) -> list[EvalConfig]:
    """The same k, p with each template strategy."""
    return [EvalConfig(k, p, s, study="strategy") for s in STRATEGIES]


def run_study(
    name: str,
    table: AnchorTable,
    benchmarks: Sequence[Benchmark],
    out_dir: str | Path,
    *,
    cache: EmbeddingCache,
    evaluations: EvaluationsTable | None = None,
    options: StudyOptions = StudyOptions(),
    k: int = 50,
    p: float = 8.0,
    strategy: Strategy = "max",
    force: bool = False,
    run_id: str | None = None,
) -> StudyResult:
    """Run study `name` (one of `STUDIES`) on the table's version; plot to `out_dir`."""
    if name == "anchors":
        configs = anchor_configs(len(table), options, k, p, strategy)
    elif name == "kp":
        configs = kp_configs(options, strategy)
    elif name == "strategy":
        configs = strategy_configs(k, p)
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
        plot = kp_plot(rows, path)
    else:
        plot = curve_plot(rows, path, "Template strategies: accuracy vs unknown rate")
    columns = SUMMARY_COLUMNS if name != "anchors" else (*SUMMARY_COLUMNS, "subset_seed")
    return StudyResult(name, rows, plot, markdown_table(rows, columns))
