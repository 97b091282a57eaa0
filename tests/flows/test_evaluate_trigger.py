"""Done-when: an `asif.anchors.updated` event makes Prefect run the `evaluate` deployment
(deployed from this repository's prefect.yaml, with its event trigger) on a process worker,
and the evaluations table gets a row for the version in the event, far above chance; a
second update (more anchors, new version, new event) adds a second row.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import yaml

from asif.evaluation.benchmarks import load_benchmark
from asif.evaluation.embedding_cache import EmbeddingCache
from asif.evaluation.evaluate import EvalConfig, evaluate_version
from asif.evaluation.evaluations_table import EvaluationsTable
from asif.store.table import AnchorTable
from tests.evaluation.shared import TEST_LIMIT, K, make_anchor_table, session_cache_dir
from tests.prefect_fixtures import (
    PrefectServer,
    prefect_server,  # noqa: F401  (the fixture)
    running_process_worker,
    wait_for_flow_run,
)

REPO = Path(__file__).resolve().parents[2]
POOL = "evaluate-trigger-test"
FIRST_ROWS = 80


def _deployment_file(tmp_path: Path, params: dict) -> Path:
    """prefect.yaml with only the repo's `evaluate` deployment, on the test pool and with the
    test's parameters; its trigger and schedule stay as written."""
    config = yaml.safe_load((REPO / "prefect.yaml").read_text())
    (deployment,) = [d for d in config["deployments"] if d["name"] == "evaluate"]
    deployment["work_pool"] = {"name": POOL}
    deployment["parameters"] = {**deployment.get("parameters", {}), **params}
    config["deployments"] = [deployment]
    path = tmp_path / "prefect.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _deploy(server: PrefectServer, prefect_file: Path) -> None:
    """`prefect deploy` of the file's `evaluate` deployment, from the repository."""
    result = subprocess.run(
        [sys.executable, "-m", "prefect", "deploy", "--prefect-file", str(prefect_file),
         "--name", "evaluate", "--no-prompt"],
        env=server.env, cwd=REPO, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    if result.returncode != 0 or "successfully created" not in result.stdout:
        raise AssertionError(f"prefect deploy failed:\n{result.stdout}\n{result.stderr}")


def _emit(server: PrefectServer, table: AnchorTable) -> None:
    payload = {
        "table_uri": table.uri,
        "table_name": table.name,
        "version": table.version,
        "tag": None,
        "inserted": 0,
        "updated": 0,
        "rows": len(table),
    }
    server.run_cli(
        "event", "emit", "asif.anchors.updated",
        "--resource-id", f"asif.anchors.{table.name}",
        "--payload", json.dumps(payload),
    )  # fmt: skip


def _triggered_run(server: PrefectServer, deployment_id: str, version: int) -> dict | None:
    runs = server.api(
        "POST", "/flow_runs/filter", {"flow_runs": {"deployment_id": {"any_": [deployment_id]}}}
    )
    return next((r for r in runs if r["parameters"].get("version") == version), None)


def _evaluate_on_event(server, deployment_id, table, logs) -> dict:
    """Emit the event (again if no run appears: the automation may still be loading) and
    wait for the triggered run to finish."""
    run = None
    for _ in range(4):
        _emit(server, table)
        deadline = time.monotonic() + 30
        while run is None and time.monotonic() < deadline:
            run = _triggered_run(server, deployment_id, table.version)
            time.sleep(1)
        if run is not None:
            break
    assert run is not None, f"no evaluate run triggered for version {table.version}"
    return wait_for_flow_run(server, run["id"], timeout=300, logs=logs)


def test_anchor_update_event_triggers_evaluation(prefect_server, tmp_path):  # noqa: F811
    db = tmp_path / "db"
    table = make_anchor_table(db, slice(0, FIRST_ROWS))
    cache_dir = session_cache_dir()
    benchmark = load_benchmark("fashion-mnist", limit=TEST_LIMIT)
    # warm the cache
    evaluate_version(table, [benchmark], [EvalConfig(k=K)], cache=EmbeddingCache(cache_dir))

    params = {"limit": TEST_LIMIT, "k": K, "cache_dir": str(cache_dir)}
    prefect_file = _deployment_file(tmp_path, params)
    prefect_server.run_cli("work-pool", "create", POOL, "--type", "process", "--overwrite")
    _deploy(prefect_server, prefect_file)
    deployment = prefect_server.api("GET", "/deployments/name/evaluate/evaluate")
    assert [s["schedule"]["cron"] for s in deployment["schedules"]] == ["0 3 * * *"]
    automations = prefect_server.api("POST", "/automations/filter", {})
    (trigger,) = [a["trigger"] for a in automations if deployment["id"] in json.dumps(a)]
    assert trigger["expect"] == ["asif.anchors.updated"]

    with running_process_worker(prefect_server, POOL, cwd=REPO) as worker:
        logs = [worker.log_path, prefect_server.log_path]
        first = _evaluate_on_event(prefect_server, deployment["id"], table, logs)
        assert first["state"]["type"] == "COMPLETED", first["state"]
        assert first["parameters"]["version"] == table.version  # an int, not "2"
        assert first["parameters"]["table_uri"] == str(db)

        rows = EvaluationsTable.open(str(db)).read().to_pylist()
        assert [(r["table_version"], r["run_id"]) for r in rows] == [(table.version, first["id"])]
        assert rows[0]["acc1"] >= 0.4 and rows[0]["n_anchors"] == FIRST_ROWS

        second_table = make_anchor_table(db, slice(FIRST_ROWS, None))
        assert second_table.version > table.version
        second = _evaluate_on_event(prefect_server, deployment["id"], second_table, logs)
        assert second["state"]["type"] == "COMPLETED", second["state"]

    rows = EvaluationsTable.open(str(db)).read().to_pylist()
    by_version = {r["table_version"]: r for r in rows}
    assert sorted(by_version) == [table.version, second_table.version] and len(rows) == 2
    assert by_version[second_table.version]["n_anchors"] == len(second_table)
    assert by_version[second_table.version]["acc1"] >= 0.4
