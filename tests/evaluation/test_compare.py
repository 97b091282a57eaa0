import math

import pytest

from asif.evaluation.compare import compare_rows, compare_with_previous, previous_row
from asif.evaluation.evaluations_table import EvaluationsTable
from tests.evaluation.test_evaluations_table import _row


def _eval_row(key, version, acc1, class_accuracy):
    row = _row(key, version, acc1)
    row.update(
        benchmark_key="fm-key", class_names=["a", "b", "c"], class_accuracy=class_accuracy,
        class_count=[10, 10, 10], n_anchors=100, table_rows=100,
    )  # fmt: skip
    return row


def test_compare_rows():
    before = _eval_row("x", 1, 0.5, [0.5, 0.5, 0.5])
    after = _eval_row("y", 2, 0.6, [0.8, 0.5, 0.5 - 0.1])
    c = compare_rows(before, after)
    assert c.delta == pytest.approx(0.1)
    assert c.improved == ["a"] and c.regressed == ["c"]
    assert (c.before_version, c.after_version) == (1, 2)
    md = c.markdown()
    assert "version 1 -> 2" in md and "+10.00%" in md
    assert md.index("| a |") < md.index("| c |") < md.index("| b |")
    d = c.to_dict()
    assert d["improved"] == ["a"] and d["classes"][0]["delta"] == pytest.approx(0.3)
    assert compare_rows(before, after, tolerance=0.2).regressed == []
    with pytest.raises(ValueError, match="different benchmarks"):
        compare_rows(before, {**after, "benchmark_key": "other"})


def test_nan_classes_are_skipped():
    c = compare_rows(
        _eval_row("x", 1, 0.5, [math.nan, 0.5, 0.5]), _eval_row("y", 2, 0.5, [0.1, 0.5, 0.5])
    )
    assert [x.name for x in c.classes] == ["b", "c"]


def test_previous_evaluated_version(tmp_path):
    table = EvaluationsTable.open(str(tmp_path))
    rows = [
        _eval_row("v1", 1, 0.5, [0.5] * 3),
        _eval_row("v2", 2, 0.6, [0.6] * 3),
        _eval_row("v4", 4, 0.7, [0.7] * 3),
    ]
    table.add(rows)
    assert previous_row(table, rows[2])["table_version"] == 2
    assert previous_row(table, rows[0]) is None
    assert previous_row(table, {**rows[2], "k": 10}) is None
    (c,) = compare_with_previous(table, [rows[2]])
    assert (c.before_version, c.after_version) == (2, 4)
