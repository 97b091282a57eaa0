"""Issue 17, item 2: `GET /evaluations`, the stored results of the served table's versions."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import lancedb
import pyarrow as pa

from asif.evaluation.evaluations_table import EVALUATIONS_SCHEMA, EvaluationsTable

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def row(version: int, minutes: int, **extra) -> dict:
    return {
        "settings_key": f"key-{version}-{minutes}",
        "evaluated_at": T0 + timedelta(minutes=minutes),
        "study": "main",
        "task": "zeroshot_classification",
        "table_name": "anchors",
        "table_version": version,
        "benchmark": "fashion-mnist",
        "n_images": 500,
        "k": 800,
        "p": 16.0,
        "acc1": 0.5 + version / 100,
        "acc5": 0.9,
        **extra,
    }


def test_none_stored_is_an_empty_list_and_creates_nothing(client, shape_table):
    r = client.get("/evaluations")
    assert r.status_code == 200 and r.json() == {"evaluations": []}
    assert "evaluations" not in lancedb.connect(shape_table.uri).table_names()


def test_newest_first_this_table_main_study_limited_nan_as_null(client, shape_table):
    EvaluationsTable.open(shape_table.uri).add(
        [
            row(1, 0),
            row(2, 5, acc5=math.nan, table_tags="prod"),
            row(2, 3, study="anchors"),  # a subset study: not the version's result
            row(3, 9, table_name="other"),  # another anchor table in the same database
            row(2, 7, task="zeroshot_retrieval", benchmark="coco", acc1=None, acc5=None,
                image_retrieval_recall_at_1=0.25, text_retrieval_recall_at_1=0.3),
        ]
    )  # fmt: skip
    got = client.get("/evaluations").json()["evaluations"]
    assert [(r["table_version"], r["benchmark"]) for r in got] == [
        (2, "coco"), (2, "fashion-mnist"), (1, "fashion-mnist"),
    ]  # fmt: skip
    assert got[0]["image_retrieval_recall_at_1"] == 0.25 and got[0]["acc1"] is None
    assert got[1]["acc5"] is None and got[1]["table_tags"] == "prod" and got[1]["acc1"] == 0.52
    assert [
        r["table_version"] for r in client.get("/evaluations?limit=1").json()["evaluations"]
    ] == [2]
    for bad in ("0", "201", "x"):
        assert client.get(f"/evaluations?limit={bad}").status_code == 422


def test_a_table_made_before_the_clip_benchmark_names_reads_under_them(client, shape_table):
    old = pa.schema(
        [f for f in EVALUATIONS_SCHEMA if f.name not in ("acc1", "acc5", "task")]
        + [pa.field("top1", pa.float64()), pa.field("top5", pa.float64())]
    )
    values = {k: v for k, v in row(1, 0).items() if k not in ("acc1", "acc5", "task")}
    lancedb.connect(shape_table.uri).create_table(
        "evaluations", pa.Table.from_pylist([{**values, "top1": 0.7, "top5": 0.95}], schema=old)
    )
    [got] = client.get("/evaluations").json()["evaluations"]
    assert (got["acc1"], got["acc5"], got["task"]) == (0.7, 0.95, None)
    names = lancedb.connect(shape_table.uri).open_table("evaluations").schema.names
    assert "top1" in names and "acc1" not in names  # read, not upgraded
