"""Tasks of the evaluate flow: thin wrappers over `asif.evaluation`, plus the artifacts."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from prefect import get_run_logger, task
from prefect.artifacts import create_image_artifact, create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from asif.evaluation.benchmarks import AnyBenchmark, Benchmark, load_benchmark
from asif.evaluation.compare import Comparison, compare_rows, compare_with_previous
from asif.evaluation.evaluate import EvalConfig, evaluate_version
from asif.evaluation.evaluations_table import Row
from asif.evaluation.exports import Exported, export
from asif.evaluation.metrics import CLASSIFICATION
from asif.evaluation.report import image_markdown, results_markdown, row_summary
from asif.evaluation.run import EvaluationSetup
from asif.evaluation.studies import StudyOptions, StudyResult, run_study


@task(name="load-benchmarks", cache_policy=NO_CACHE)
def load_benchmarks(
    names: Sequence[str], split: str, limit: int | None, roots: Mapping[str, str]
) -> list[AnyBenchmark]:
    """The named benchmarks (roots by name where needed), `limit` images each."""
    return [load_benchmark(n, split, roots.get(n), limit) for n in names]


@task(name="evaluate-version", cache_policy=NO_CACHE)
def evaluate_main(
    setup: EvaluationSetup,
    benchmarks: list[AnyBenchmark],
    config: EvalConfig,
    thresholds: list[float] | None,
    force: bool,
    run_id: str,
) -> list[Row]:
    """Evaluate the version (a no-op for settings already stored, unless `force`)."""
    rows = evaluate_version(
        setup.table,
        benchmarks,
        [config],
        thresholds=thresholds,
        cache=setup.cache,
        evaluations=setup.evaluations,
        force=force,
        run_id=run_id,
    )
    logger = get_run_logger()
    for r in rows:
        logger.info("%s (run %s)", row_summary(r), r["run_id"])
    return rows


@task(name="study", cache_policy=NO_CACHE)
def study(
    name: str,
    setup: EvaluationSetup,
    benchmarks: list[AnyBenchmark],
    options: StudyOptions,
    config: EvalConfig,
    force: bool,
    run_id: str,
) -> StudyResult:
    """One study on the version's classification benchmarks, varying `config`, written to
    the evaluations table and plotted."""
    return run_study(
        name,
        setup.table,
        [b for b in benchmarks if isinstance(b, Benchmark)],
        setup.plots_dir,
        cache=setup.cache,
        evaluations=setup.evaluations,
        options=options,
        base=config,
        force=force,
        run_id=run_id,
    )


@task(name="compare-versions", cache_policy=NO_CACHE)
def compare(
    setup: EvaluationSetup,
    rows: list[Row],
    benchmarks: list[AnyBenchmark],
    compare_to: int | None,
    config: EvalConfig,
) -> list[Comparison]:
    """Compare the classification results with version `compare_to` (evaluated if needed),
    else the previous evaluated version of each benchmark."""
    rows = [r for r in rows if r["task"] == CLASSIFICATION]
    benchmarks = [b for b in benchmarks if isinstance(b, Benchmark)]
    if compare_to is None:
        return compare_with_previous(setup.evaluations, rows)
    other = setup.table.at(compare_to)  # the same location and storage options
    before = evaluate_version(
        other,
        benchmarks,
        [config],
        cache=setup.cache,
        evaluations=setup.evaluations,
    )
    return [compare_rows(b, a) for b, a in zip(before, rows, strict=True)]


def artifact_key(table_name: str) -> str:
    """`evaluate-<table name>`, in the characters artifact keys allow."""
    return "evaluate-" + re.sub(r"[^a-z0-9-]+", "-", table_name.lower()).strip("-")


@task(name="publish-artifacts", cache_policy=NO_CACHE)
def publish(
    setup: EvaluationSetup,
    rows: list[Row],
    studies: list[StudyResult],
    comparisons: list[Comparison],
) -> Exported:
    """The results as files (CLIP_benchmark JSONs and CSV, the unknown-rate figure, in
    `<plots_dir>/<table>-v<version>/`), one markdown artifact (tables, plots inlined as
    base64 PNGs and their paths, comparisons) and an image artifact per plot."""
    t = setup.table
    exported = export(rows, setup.plots_dir / f"{t.name}-v{t.version}")
    parts = [
        f"## Zero-shot evaluation of `{t.name}` version {t.version}",
        f"anchor table `{t.dataset_uri}`; evaluations table `{setup.evaluations.dataset_uri}`",
        f"CLIP_benchmark results: `{exported.csv}`",
        "",
        results_markdown(rows),
    ]
    parts += ["\n" + image_markdown(plot.path, plot.title) for plot in exported.plots]
    for s in studies:
        parts += ["", f"### Study: {s.name}", "", s.markdown, "", image_markdown(s.plot.path)]
    for c in comparisons:
        parts += ["", c.markdown()]
    key = artifact_key(t.name)
    create_markdown_artifact("\n".join(parts), key=key, description=f"{t.name} v{t.version}")
    for plot in [*exported.plots, *(s.plot for s in studies)]:
        create_image_artifact(plot.path.resolve().as_uri(), description=plot.title)
    return exported
