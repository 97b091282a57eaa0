from datetime import UTC, datetime

import duckdb
import lance
import polars as pl
import pytest

from asif.evaluation.evaluations_table import EVALUATIONS_SCHEMA, EvaluationsTable


def _row(key: str, version: int, top1: float) -> dict:
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
        top1=top1,
        thresholds=[0.0, 0.5],
        curve_accuracy=[top1, 0.2],
        curve_unknown=[0.0, 0.5],
        curve_wrong=[1 - top1, 0.3],
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
    assert sorted(found) == ["a", "b"] and found["a"]["top1"] == 0.65

    ds = lance.dataset(table.dataset_uri)  # noqa: F841  (DuckDB scans it by name)
    best = duckdb.sql(
        "SELECT table_version, max(top1) AS top1, list_extract(curve_unknown, 2) AS unk "
        "FROM ds GROUP BY ALL ORDER BY table_version"
    ).fetchall()
    assert best == [(1, 0.65, 0.5), (2, 0.7, 0.5)]

    df = pl.scan_pyarrow_dataset(ds).filter(pl.col("table_version") == 2).collect()
    assert df["top1"].to_list() == [0.7]
    assert df["class_names"].to_list() == [["a", "b"]]
    assert df.schema["curve_accuracy"] == pl.List(pl.Float64)
    exploded = pl.from_arrow(table.read()).explode(["thresholds", "curve_accuracy"])
    assert exploded.height == 6


def test_schema_is_enforced(tmp_path):
    table = EvaluationsTable.open(str(tmp_path))
    with pytest.raises((TypeError, ValueError, KeyError)):
        table.add([{"settings_key": "x", "top1": "not a number"}])
