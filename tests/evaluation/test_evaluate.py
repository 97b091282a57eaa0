"""Evaluation of a real anchor table: Fashion-MNIST train images with captions as anchors,
held-out test images as the benchmark."""

import numpy as np
import pytest

from asif.errors import SettingsError, StrategyError
from asif.evaluation.benchmarks import load_benchmark
from asif.evaluation.embedding_cache import EmbeddingCache
from asif.evaluation.evaluate import EvalConfig, evaluate_version, settings_key, unknown_curve
from asif.evaluation.evaluations_table import EVALUATIONS_SCHEMA, EvaluationsTable
from asif.evaluation.scoring import Answers
from asif.model.settings import ModelSettings
from tests.evaluation.shared import K


def test_default_config_measures_the_model_defaults():
    served = ModelSettings("any", "any")
    assert (EvalConfig().k, EvalConfig().p) == (served.k, served.p)
    assert EvalConfig.overriding() == EvalConfig()
    assert EvalConfig.overriding(k=7) == EvalConfig(k=7, p=served.p)
    assert EvalConfig.overriding(p=2, strategy="mean") == EvalConfig(served.k, 2.0, "mean")
    assert EvalConfig(p=8) == EvalConfig(p=8.0)  # one settings key
    with pytest.raises(StrategyError):
        EvalConfig(strategy="median")


def test_bad_settings_fail_before_anything_is_embedded(anchor_table, benchmark, tmp_path):
    cache = EmbeddingCache(tmp_path)
    with pytest.raises(SettingsError, match="k must be"):
        evaluate_version(anchor_table, [benchmark], [EvalConfig(k=0)], cache=cache)
    assert not cache.stats


def test_accuracy_far_above_chance(anchor_table, benchmark, cache):
    (row,) = evaluate_version(anchor_table, [benchmark], [EvalConfig(k=K)], cache=cache)
    assert row["acc1"] >= 0.4, row["acc1"]  # chance: 0.1
    assert row["acc5"] >= row["acc1"]
    assert (row["k"], row["p"]) == (K, EvalConfig().p)
    assert row["table_version"] == anchor_table.version and row["study"] == "main"
    assert row["n_anchors"] == row["table_rows"] == len(anchor_table)
    assert row["image_encoder"] == "efficientnet-lite0"
    assert row["n_images"] == len(benchmark) and row["n_classes"] == 10
    assert set(row) == set(EVALUATIONS_SCHEMA.names)
    assert sum(a * n for a, n in zip(row["class_accuracy"], row["class_count"], strict=True)) == (
        pytest.approx(row["acc1"] * row["n_images"])
    )
    acc, unk, wrong = (np.array(row[c]) for c in ("curve_accuracy", "curve_unknown", "curve_wrong"))
    np.testing.assert_allclose(acc + unk + wrong, 1.0)
    assert acc[0] == pytest.approx(row["acc1"]) and unk[0] == 0.0
    assert np.all(np.diff(row["thresholds"]) >= 0) and np.all(np.diff(unk) >= 0)


def test_re_evaluation_is_a_no_op_unless_forced(anchor_table, benchmark, cache, tmp_path):
    evaluations = EvaluationsTable.open(str(tmp_path))
    configs = [EvalConfig(K, 8.0, "max"), EvalConfig(K, 8.0, "mean")]
    first = evaluate_version(
        anchor_table, [benchmark], configs, cache=cache, evaluations=evaluations
    )
    assert len(evaluations) == 2 and [r["strategy"] for r in first] == ["max", "mean"]
    misses = cache.stats["image_misses"]
    again = evaluate_version(
        anchor_table, [benchmark], configs, cache=cache, evaluations=evaluations
    )
    assert len(evaluations) == 2
    assert [r["run_id"] for r in again] == [r["run_id"] for r in first]
    assert [r["acc1"] for r in again] == [r["acc1"] for r in first]
    evaluate_version(
        anchor_table, [benchmark], configs, cache=cache, evaluations=evaluations, force=True
    )
    assert len(evaluations) == 4 and cache.stats["image_misses"] == misses  # embeddings cached
    evaluate_version(
        anchor_table, [benchmark], [EvalConfig(k=10)], cache=cache, evaluations=evaluations,
        run_id="r",
    )  # fmt: skip
    assert len(evaluations) == 5


def test_anchor_subsets_and_settings_keys(anchor_table, benchmark, cache):
    configs = [EvalConfig(K, 8.0, "max", 20, seed) for seed in (0, 1)]
    rows = evaluate_version(anchor_table, [benchmark], configs, cache=cache)
    assert [r["n_anchors"] for r in rows] == [20, 20]
    assert [r["subset_seed"] for r in rows] == [0, 1]
    keys = {settings_key(anchor_table, benchmark, c, None) for c in configs}
    keys.add(settings_key(anchor_table, benchmark, configs[0], [0.1]))
    assert len(keys) == 3


def test_unknown_curve_with_fixed_thresholds():
    answers = Answers(top=np.array([[0, 1], [1, 0], [0, 1]]), best=np.array([0.9, 0.3, 0.05]))
    curve = unknown_curve(answers, np.array([0, 0, 0]), [0.0, 0.1, 0.5, 1.0])
    assert curve.accuracy == pytest.approx([2 / 3, 1 / 3, 1 / 3, 0])
    assert curve.unknown == pytest.approx([0, 1 / 3, 2 / 3, 1])
    assert curve.wrong == pytest.approx([1 / 3, 1 / 3, 0, 0])


def test_each_encoder_is_loaded_once_a_run(anchor_table, tmp_path, monkeypatch):
    """Two benchmarks missing from the cache: one image and one text encoder load."""
    from asif.evaluation import evaluate as module

    loads = []
    for name in ("load_image_encoder", "load_text_encoder"):
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda spec, real=real: loads.append(spec) or real(spec))
    benchmarks = [load_benchmark("fashion-mnist", limit=10), load_benchmark("digits", limit=10)]
    evaluate_version(anchor_table, benchmarks, [EvalConfig(k=K)], cache=EmbeddingCache(tmp_path))
    assert len(loads) == 2, loads
