"""The `build-anchors/demo` deployment from prefect.yaml, run by a process worker.

A real `prefect server start` on loopback, `prefect deploy`, a `prefect worker start --pool
asif-process --type process` subprocess, then `prefect deployment run build-anchors/demo`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pyarrow.compute as pc
import pytest

from asif.store.table import AnchorTable
from tests.http_fixtures import ImageServer, generate_pairs, write_url_list
from tests.prefect_fixtures import (
    PrefectServer,
    running_prefect_server,
    running_process_worker,
    wait_for_flow_run,
)

REPO = Path(__file__).resolve().parents[2]
POOL = "asif-process"
STREAM_LOGS = {
    "PREFECT_SERVER_LOGS_STREAM_OUT_ENABLED": "true",
    "PREFECT_SERVER_LOGS_STREAM_PUBLISHING_ENABLED": "true",
}
"""What `prefect deployment run --watch` needs to show a run's logs (docs/build-anchors.md)."""


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """A `prefect server start` on loopback that streams logs to watchers."""
    home = tmp_path_factory.mktemp("prefect-server")
    with running_prefect_server(home, extra_env=STREAM_LOGS) as server:
        yield server


def test_demo_deployment_runs_on_a_process_worker(prefect_server: PrefectServer, tmp_path):
    server = prefect_server
    template = REPO / "infra/prefect/work-pool.json"
    server.run_cli(
        "work-pool", "create", POOL, "--type", "process", "--base-job-template", str(template)
    )
    deployed = server.run_cli("deploy", "--name", "demo", cwd=REPO)
    assert "'build-anchors/demo' successfully created" in deployed.stdout, deployed
    deployment = server.api("GET", "/deployments/name/build-anchors/demo")
    assert deployment["work_pool_name"] == POOL
    assert deployment["entrypoint"] == "flows/build_anchors.py:build_anchors"
    assert deployment["pull_steps"] == [
        {"prefect.deployments.steps.set_working_directory": {"directory": str(REPO)}}
    ]

    for bad, named in (
        ({"embed": {"num_actor": 2}}, "num_actor"),
        ({"batch_size": 8}, "batch_size"),
    ):
        refused = server.run_cli(
            "deployment", "run", "build-anchors/demo", "--params", json.dumps(bad), check=False
        )
        assert refused.returncode != 0 and named in refused.stdout, refused

    items = generate_pairs(10, n_missing=1, n_html=1)
    params = {
        "table_uri": str(tmp_path / "db"),
        "work_dir": str(tmp_path / "work"),
        "quarantine_dir": str(tmp_path / "quarantine"),
        "download": {"image_size": 64},
        "embed": {
            "image_encoder": "efficientnet-lite0",
            "batch_size": 8,
            "rows_per_batch": 8,
            "cpus_per_actor": 0.5,
        },
        "tag": "deployed",
    }
    with (
        ImageServer(items) as images,
        running_process_worker(
            server, POOL, base_job_template=REPO / "infra/prefect/work-pool.json"
        ) as worker,
    ):
        url_list = write_url_list(images, [p for p, _ in items], tmp_path / "urls.csv")
        run = server.run_cli(
            "deployment",
            "run",
            "build-anchors/demo",
            "--param",
            f"url_list={url_list}",
            "--params",
            json.dumps(params),
        )
        flow_run_id = re.search(r"UUID:\s*([0-9a-f-]{36})", run.stdout).group(1)
        final = wait_for_flow_run(server, flow_run_id, timeout=300, logs=[worker.log_path])
        failed = server.run_cli(
            "deployment", "run", "build-anchors/demo", "--watch", "--watch-timeout", "240",
            "--param", f"url_list={tmp_path / 'missing.csv'}", "--params", json.dumps(params),
            timeout=300, check=False,
        )  # fmt: skip
    # `--watch` shows the reason (the flow's logs), not only "finished in state 'Failed'"
    assert failed.returncode == 1, failed
    said = " ".join(failed.stdout.split())  # the terminal wraps long lines
    assert "missing.csv does not exist or is not a file" in said, failed.stdout[-6000:]
    assert final["state"]["type"] == "COMPLETED", worker.log_path.read_text()[-6000:]
    assert final["parameters"]["embed"] == params["embed"]
    assert final["parameters"]["table_name"] == "demo"  # from the deployment
    (progress,) = server.api(
        "POST", "/artifacts/filter",
        {"artifacts": {"flow_run_id": {"any_": [flow_run_id]}, "type": {"any_": ["progress"]}}},
    )  # fmt: skip
    assert progress["key"] == "build-anchors-progress" and progress["data"] == 100.0, progress
    assert "committed" in progress["description"], progress
    pool = server.api("GET", f"/work_pools/{POOL}")
    assert pool["base_job_template"]["variables"]["properties"]["env"]["default"]

    table = AnchorTable.open(params["table_uri"], "demo")
    assert len(table) == 10
    assert pc.count_distinct(table.read(["id"])["id"]).as_py() == 10
    assert table.tags() == {"deployed": table.version}
    assert table.image_encoder == "efficientnet-lite0"
