from datetime import UTC, datetime

import duckdb
import lance
import lancedb
import polars as pl
import pyarrow as pa
import pytest

from asif.evaluation.evaluations_table import EVALUATIONS_SCHEMA, EvaluationsTable


def _row(key: str, version: int, acc1: float) -> dict:
    row = {name: None for name in EVALUATIONS_SCHEMA.names}
    row.update(
        settings_key=key,
        run_id="run",
        evaluated_at=datetime.now(UTC),
        study="main",
        table_uri="/db",
        table_name="anchors",
        table_version=version,
        benchmark="fashion-mnist",
        k=50,
        p=8.0,
        strategy="max",
        acc1=acc1,
        thresholds=[0.0, 0.5],
        curve_accuracy=[acc1, 0.2],
        curve_unknown=[0.0, 0.5],
        curve_wrong=[1 - acc1, 0.3],
        class_names=["a", "b"],
        class_accuracy=[0.5, 0.7],
        class_count=[3, 4],
    )
    return row


def test_add_find_and_read_with_duckdb_and_polars(tmp_path):
    table = EvaluationsTable.open(str(tmp_path))
    assert len(table) == 0
    table.add([_row("a", 1, 0.6), _row("b", 2, 0.7)])
    table.add([_row("a", 1, 0.65)])
    assert len(EvaluationsTable.open(str(tmp_path))) == 3
    found = table.find(["a", "b", "c"])
    assert sorted(found) == ["a", "b"] and found["a"]["acc1"] == 0.65

    ds = lance.dataset(table.dataset_uri)  # noqa: F841  (DuckDB scans it by name)
    best = duckdb.sql(
        "SELECT table_version, max(acc1) AS acc1, list_extract(curve_unknown, 2) AS unk "
        "FROM ds GROUP BY ALL ORDER BY table_version"
    ).fetchall()
    assert best == [(1, 0.65, 0.5), (2, 0.7, 0.5)]

    df = pl.scan_pyarrow_dataset(ds).filter(pl.col("table_version") == 2).collect()
    assert df["acc1"].to_list() == [0.7]
    assert df["class_names"].to_list() == [["a", "b"]]
    assert df.schema["curve_accuracy"] == pl.List(pl.Float64)
    exploded = pl.from_arrow(table.read()).explode(["thresholds", "curve_accuracy"])
    assert exploded.height == 6


def test_schema_is_enforced(tmp_path):
    table = EvaluationsTable.open(str(tmp_path))
    with pytest.raises((TypeError, ValueError, KeyError)):
        table.add([{"settings_key": "x", "acc1": "not a number"}])


def test_a_table_of_an_earlier_release_is_upgraded_in_place(tmp_path):
    """Tables made before retrieval and CLIP_benchmark's names: top1/top5 renamed, the new
    columns added as nulls, old rows marked as classification; nothing lost."""
    old_names = {"acc1": "top1", "acc5": "top5"}
    new = {"task", "n_texts", "mean_per_class_recall"}
    old_schema = pa.schema(
        [
            pa.field(old_names.get(f.name, f.name), f.type, f.nullable)
            for f in EVALUATIONS_SCHEMA
            if f.name not in new and "retrieval" not in f.name
        ]
    )
    renamed = {old_names.get(k, k): v for k, v in _row("old", 1, 0.4).items()}
    old_row = {k: v for k, v in renamed.items() if k in old_schema.names}
    db = lancedb.connect(tmp_path)
    db.create_table("evaluations", pa.Table.from_pylist([old_row], schema=old_schema))
    table = EvaluationsTable.open(str(tmp_path))
    (row,) = table.read().to_pylist()
    assert set(row) == set(EVALUATIONS_SCHEMA.names)
    assert (row["settings_key"], row["acc1"], row["task"]) == (
        "old",
        0.4,
        "zeroshot_classification",
    )
    assert row["mean_per_class_recall"] is None and row["image_retrieval_recall_at_1"] is None
    table.add([{**_row("new", 2, 0.6), "task": "zeroshot_retrieval", "n_texts": 10}])
    again = EvaluationsTable.open(str(tmp_path))  # opening an upgraded table changes nothing
    assert {r["settings_key"]: r["task"] for r in again.read().to_pylist()} == {
        "old": "zeroshot_classification",
        "new": "zeroshot_retrieval",
    }
