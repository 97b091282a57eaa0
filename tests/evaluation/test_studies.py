import json

from PIL import Image

from asif.evaluation.evaluate import EvalConfig
from asif.evaluation.evaluations_table import EvaluationsTable
from asif.evaluation.studies import StudyOptions, anchor_configs, run_study
from tests.evaluation.shared import K

OPTIONS = StudyOptions(anchor_counts=(10, 40, 10**6), anchor_seeds=(0, 1), ks=(5, K), ps=(4.0, 8.0))


def test_anchor_configs_drop_counts_above_the_table():
    configs = anchor_configs(50, OPTIONS, EvalConfig(k=K, strategy="mean"))
    assert [(c.n_anchors, c.subset_seed) for c in configs] == [
        (10, 0), (10, 1), (40, 0), (40, 1), (None, 0)
    ]  # fmt: skip
    assert {(c.study, c.k, c.strategy) for c in configs} == {("anchors", K, "mean")}


def test_studies_write_rows_plots_and_tables(anchor_table, benchmark, cache, tmp_path):
    evaluations = EvaluationsTable.open(str(tmp_path))
    results = {
        name: run_study(
            name,
            anchor_table,
            [benchmark],
            tmp_path / "plots",
            cache=cache,
            evaluations=evaluations,
            options=OPTIONS,
            base=EvalConfig(k=K),
        )  # fmt: skip
        for name in ("anchors", "kp", "strategy")
    }
    stored = evaluations.read().to_pylist()
    assert sorted({r["study"] for r in stored}) == ["anchors", "kp", "strategy"]
    assert len(stored) == 5 + 4 + 2

    anchors = results["anchors"]
    n = len(anchor_table)
    (series,) = anchors.plot.series.values()
    assert series["x"] == [10, 40, n] and all(0 <= y <= 1 for y in series["y"])
    assert series["y"][-1] >= 0.4
    assert "subset_seed" in anchors.markdown.splitlines()[0]

    kp = results["kp"]
    assert sorted(kp.plot.series) == ["fashion-mnist p=4", "fashion-mnist p=8"]
    assert all(s["x"] == [5, K] for s in kp.plot.series.values())

    strategy = results["strategy"]
    assert [r["strategy"] for r in strategy.rows] == ["max", "mean"]
    assert len(strategy.plot.series) == 2 and "| mean |" in strategy.markdown
    for result in results.values():
        with Image.open(result.plot.path) as im:
            assert im.format == "PNG" and im.size[0] > 100
        assert json.loads(result.plot.sidecar.read_text())["series"] == result.plot.series
    assert anchors.plot.path.name == f"anchors-v{anchor_table.version}-anchors.png"
