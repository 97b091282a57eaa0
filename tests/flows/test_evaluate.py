"""The evaluate flow, run in this process against a real Prefect server on loopback."""

from __future__ import annotations

import base64
import json

import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings

from asif.evaluation.evaluations_table import EvaluationsTable
from tests.evaluation.shared import TEST_LIMIT, K, make_anchor_table, session_cache_dir
from tests.prefect_fixtures import prefect_server  # noqa: F401  (the fixture)


@pytest.fixture
def api(prefect_server):  # noqa: F811
    with temporary_settings(updates={PREFECT_API_URL: prefect_server.api_url}):
        yield prefect_server


def test_flow_evaluates_studies_compares_and_publishes(api, tmp_path):
    from flows.evaluate import evaluate

    table = make_anchor_table(tmp_path / "db", slice(0, 60))
    v1 = table.version
    params = dict(
        table_uri=str(tmp_path / "db"), limit=TEST_LIMIT, k=K, cache_dir=str(session_cache_dir())
    )
    first = evaluate(**params, version=v1)
    assert first["version"] == v1 and first["comparisons"] == []
    assert first["rows"][0]["acc1"] >= 0.4

    make_anchor_table(tmp_path / "db", slice(60, None))
    out = evaluate(
        **params,
        studies=["anchors", "kp", "strategy"],
        anchor_counts=[10, 30],
        anchor_seeds=[0],
        ks=[10, K],
        ps=[8.0],
    )
    v2 = out["version"]
    assert v2 > v1
    (cmp,) = out["comparisons"]
    assert (cmp["before_version"], cmp["after_version"]) == (v1, v2)
    assert cmp["acc1_before"] == first["rows"][0]["acc1"]
    assert len(cmp["classes"]) == 10
    assert len(out["plots"]) == 4 and all(p.endswith(".png") for p in out["plots"])
    anchors_series = json.loads(open(out["plots"][1].replace(".png", ".json")).read())["series"]
    assert list(anchors_series.values())[0]["x"] == [10, 30, 120]

    rows = EvaluationsTable.open(str(tmp_path / "db")).read().to_pylist()
    assert {(r["study"], r["table_version"]) for r in rows} >= {("main", v1), ("main", v2)}
    assert len([r for r in rows if r["study"] == "anchors"]) == 3

    again = evaluate(**params, version=v1, compare_to=v2)
    assert again["rows"] == first["rows"]
    (back,) = again["comparisons"]
    assert (back["before_version"], back["after_version"]) == (v2, v1)
    assert back["delta"] == pytest.approx(-cmp["delta"])
    assert len(EvaluationsTable.open(str(tmp_path / "db"))) == len(rows)

    key_filter = {"artifacts": {"key": {"any_": ["evaluate-anchors"]}}}
    artifacts = api.api("POST", "/artifacts/filter", key_filter)
    assert len(artifacts) == 3  # one version of the keyed artifact per run
    md = next(a["data"] for a in artifacts if f"version {v2}\n" in a["data"])
    assert "| fashion-mnist |" in md and "### Study: kp" in md
    assert f"version {v1} -> {v2}" in md
    png = base64.b64decode(md.split("data:image/png;base64,", 1)[1].split(")", 1)[0])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    images = api.api("POST", "/artifacts/filter", {"artifacts": {"type": {"any_": ["image"]}}})
    assert any(a["data"].endswith("-kp.png") and a["data"].startswith("file://") for a in images)
