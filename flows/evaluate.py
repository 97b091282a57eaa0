"""The `evaluate` flow: zero-shot classification and retrieval of one anchor table version on
benchmarks, written to the `evaluations` LanceDB table and as CLIP_benchmark result files,
with optional studies and a comparison with another version. Deployed with a trigger on
`asif.anchors.updated` (see prefect.yaml); the logic lives in `asif.evaluation`. Unless `k` or
`p` are given, it measures the settings `asif serve` serves (the model defaults,
`asif.model.settings`).
"""

from __future__ import annotations

from prefect import flow
from prefect.runtime import flow_run

from asif.evaluation.evaluate import EvalConfig
from asif.evaluation.run import open_setup
from asif.evaluation.studies import STUDIES, StudyOptions
from asif.model.zero_shot import DEFAULT_STRATEGY, Strategy
from tasks.evaluate import compare, evaluate_main, load_benchmarks, publish, study

SUMMARY_FIELDS = (
    "benchmark", "task", "table_version", "n_anchors", "n_images", "k", "p", "strategy", "acc1",
    "acc5", "mean_per_class_recall", "image_retrieval_recall_at_1", "text_retrieval_recall_at_1",
)  # fmt: skip


@flow(name="evaluate")
def evaluate(
    table_uri: str = "asif-data/lancedb",
    table_name: str = "anchors",
    version: int | None = None,
    benchmarks: list[str] | None = None,
    split: str = "test",
    limit: int | None = 1000,
    roots: dict[str, str] | None = None,
    k: int | None = None,
    p: float | None = None,
    strategy: Strategy = DEFAULT_STRATEGY,
    thresholds: list[float] | None = None,
    force: bool = False,
    studies: list[str] | None = None,
    anchor_counts: list[int] | None = None,
    anchor_seeds: list[int] | None = None,
    ks: list[int] | None = None,
    ps: list[float] | None = None,
    compare_to: int | None = None,
    evaluations_uri: str | None = None,
    cache_dir: str | None = None,
    plots_dir: str | None = None,
    storage_options: dict[str, str] | None = None,
) -> dict:
    """Evaluate `table_name` at `version` (None: latest) on `benchmarks` (default
    ["fashion-mnist"]), `limit` test images each (spread over the classes; None: all).

    `roots` maps benchmark names to their data folders (all but the shipped fashion-mnist and
    digits; retrieval sets: coco, flickr30k, flickr8k, captioned-folder).
    `k`, `p`: None means the model default (what `asif serve` serves).
    `studies`: any of "anchors", "kp", "strategy", with their grids `anchor_counts`,
    `anchor_seeds`, `ks`, `ps`. `compare_to`: a version to compare with (default: the
    previous evaluated version). Settings already evaluated for this version are not
    recomputed unless `force`. Returns the summary rows, the CLIP_benchmark files and CSV,
    plot paths and comparisons.
    """
    config = EvalConfig.overriding(k, p, strategy)
    unknown = sorted(set(studies or []) - set(STUDIES))
    if unknown:
        raise ValueError(f"unknown studies {unknown}; choose from {STUDIES}")
    defaults = StudyOptions()
    options = StudyOptions(
        tuple(anchor_counts or defaults.anchor_counts),
        tuple(anchor_seeds or defaults.anchor_seeds),
        tuple(ks or defaults.ks),
        tuple(ps or defaults.ps),
    )
    setup = open_setup(
        table_uri,
        table_name,
        version,
        evaluations_uri=evaluations_uri,
        cache_dir=cache_dir,
        plots_dir=plots_dir,
        storage_options=storage_options,
    )
    run_id = str(flow_run.get_id() or "")
    data = load_benchmarks(benchmarks or ["fashion-mnist"], split, limit, roots or {})
    rows = evaluate_main(setup, data, config, thresholds, force, run_id)
    results = [study(name, setup, data, options, config, force, run_id) for name in studies or []]
    comparisons = compare(setup, rows, data, compare_to, config)
    exported = publish(setup, rows, results, comparisons)
    return {
        "table_uri": table_uri,
        "table_name": table_name,
        "version": setup.table.version,
        "evaluations": setup.evaluations.dataset_uri,
        "rows": [{f: r[f] for f in SUMMARY_FIELDS} for r in rows],
        "results": [str(p) for p in exported.results],
        "csv": str(exported.csv),
        "plots": [*(str(p.path) for p in exported.plots), *(str(s.plot.path) for s in results)],
        "comparisons": [c.to_dict() for c in comparisons],
    }
