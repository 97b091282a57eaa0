"""End-to-end tests of the build-anchors flow against a local image server and Prefect server.

The flow runs in this process (a plain call) against a real `prefect server start`, so the
summary artifact and the `asif.anchors.updated` event are read back through the Prefect client.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from prefect.client.orchestration import get_client
from prefect.events.filters import EventFilter, EventNameFilter, EventRelatedFilter
from prefect.settings import PREFECT_API_URL, temporary_settings

import asif.pipeline.embed
from asif.errors import EncoderMismatchError
from asif.pipeline.ledger import read_builds
from asif.pipeline.session import LOCK_NAME
from asif.store.batch import build_anchor_batch
from asif.store.ids import anchor_id
from asif.store.location import TableLocation
from asif.store.table import AnchorTable
from flows.build_anchors import build_anchors
from tasks.build_anchors import PROGRESS_ARTIFACT_KEY, SUMMARY_ARTIFACT_KEY, UPDATED_EVENT
from tests.http_fixtures import (
    ImageServer,
    Pair,
    caption_of,
    generate_pairs,
    write_image_folder,
    write_url_list,
)
from tests.prefect_fixtures import PrefectServer, prefect_server  # noqa: F401 (fixture)

REPO = Path(__file__).resolve().parents[2]
N_GOOD, N_MORE = 16, 6
BAD = {"n_missing": 2, "n_html": 2, "n_truncated": 2}
FAST_EMBED = {
    "image_encoder": "efficientnet-lite0",
    "rows_per_batch": 8,
    "batch_size": 8,
    "cpus_per_actor": 0.5,
}
FAST = {
    "download": {"samples_per_shard": 8, "image_size": 64, "threads": 4},
    "embed": FAST_EMBED,
}


@dataclass
class Build:
    """A finished flow run: its summary, flow run id and the paths it used."""

    summary: dict
    flow_run_id: str
    table_uri: str
    work_dir: Path
    quarantine_dir: Path


@pytest.fixture(scope="module")
def api(prefect_server: PrefectServer) -> Iterator[PrefectServer]:  # noqa: F811
    """This process's Prefect client and flows use the test server."""
    with temporary_settings({PREFECT_API_URL: prefect_server.api_url}):
        yield prefect_server


@pytest.fixture(scope="module")
def images() -> Iterator[tuple[ImageServer, list[Pair], list[Pair]]]:
    """The image server, the first list (good + broken items) and more good items."""
    first = generate_pairs(N_GOOD, **BAD)
    more = generate_pairs(N_MORE, start=N_GOOD)
    with ImageServer(first + more) as server:
        yield server, [p for p, _ in first], [p for p, _ in more]


def run_build(url_list: Path, root: Path, **params: object) -> Build:
    """Run the flow in this process with the fast test settings; fail unless it completes."""
    paths = {
        "table_uri": str(root / "db"),
        "work_dir": str(root / "work"),
        "quarantine_dir": str(root / "quarantine"),
        **params,
    }
    state = build_anchors(url_list=str(url_list), **{**FAST, **paths}, return_state=True)
    assert state.is_completed(), state
    return Build(
        state.result(),
        str(state.state_details.flow_run_id),
        paths["table_uri"],
        Path(paths["work_dir"]),
        Path(paths["quarantine_dir"]),
    )


@pytest.fixture(scope="module")
def first_build(api, images, tmp_path_factory) -> Build:
    """The first build, run from its folder with a relative `table_uri` ("db")."""
    server, first, _ = images
    root = tmp_path_factory.mktemp("build")
    url_list = write_url_list(server, first, root / "urls.parquet")
    cwd = os.getcwd()
    os.chdir(root)
    try:
        build = run_build(url_list, root, tag="first", table_uri="db", progress_seconds=0.5)
    finally:
        os.chdir(cwd)
    return replace(build, table_uri=str(root / "db"))


def read_logs(server: PrefectServer, flow_run_id: str) -> list[dict]:
    """The flow run's log lines, oldest first."""
    body = {
        "logs": {"flow_run_id": {"any_": [flow_run_id]}},
        "sort": "TIMESTAMP_ASC",
        "limit": 200,
        "offset": 0,
    }
    return server.api("POST", "/logs/filter", body)


def expected_ids(server: ImageServer, pairs: list[Pair]) -> set[str]:
    return {anchor_id(server.url(p), p.caption) for p in pairs if p.ok}


def read_artifact(server: PrefectServer, flow_run_id: str) -> dict:
    """The summary artifact of a flow run, through the REST API (Prefect 3.8's client
    `read_artifacts` sends null limit/sort, which its own server rejects)."""
    body = {
        "artifacts": {
            "key": {"any_": [SUMMARY_ARTIFACT_KEY]},
            "flow_run_id": {"any_": [flow_run_id]},
        },
        "limit": 10,
        "offset": 0,
        "sort": "CREATED_DESC",
    }
    artifacts = server.api("POST", "/artifacts/filter", body)
    assert len(artifacts) == 1
    return artifacts[0]


def read_events(flow_run_id: str, wait: float = 15.0) -> list:
    """The `asif.anchors.updated` events of a flow run (events arrive asynchronously)."""
    event_filter = EventFilter(
        event=EventNameFilter(name=[UPDATED_EVENT]),
        related=EventRelatedFilter(id=[f"prefect.flow-run.{flow_run_id}"]),
    )
    deadline = time.monotonic() + wait
    with get_client(sync_client=True) as client:
        while True:
            events = client.read_events(filter=event_filter, limit=50).events
            if events or time.monotonic() > deadline:
                return events
            time.sleep(0.5)


def test_first_build_writes_every_downloadable_pair(first_build, images):
    server, first, _ = images
    s = first_build.summary
    table = AnchorTable.open(first_build.table_uri)
    rows = table.read()
    assert len(table) == s["rows"] == s["inserted"] == N_GOOD
    assert set(rows["id"].to_pylist()) == expected_ids(server, first)
    assert pc.count_distinct(rows["id"]).as_py() == rows.num_rows
    assert (s["downloaded"], s["download_failed"]) == (N_GOOD, sum(BAD.values()))
    assert s["failures_by_reason"]["HTTP Error 404: Not Found"] == BAD["n_missing"]
    assert sum(s["failures_by_reason"].values()) == sum(BAD.values())
    assert s["quarantined_batches"] == 0 and s["validated_rows"] == N_GOOD
    for column, dim in (("image_embedding", 1280), ("text_embedding", 384)):
        matrix = np.stack(rows[column].to_numpy(zero_copy_only=False))
        assert matrix.shape == (N_GOOD, dim)
        np.testing.assert_allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-4)
    assert table.image_encoder == "efficientnet-lite0"
    assert table.tags() == {"first": s["version"]} and table.version == s["version"]


def test_first_build_publishes_artifact_and_event(api, first_build):
    s = first_build.summary
    artifact = read_artifact(api, first_build.flow_run_id)
    assert artifact["type"] == "markdown"
    for line in (
        f"| downloaded pairs (work dir) | {N_GOOD} |",
        f"| failed downloads (this run) | {sum(BAD.values())} |",
        f"| inserted | {N_GOOD} |",
        f"| table version | 0 -> {s['version']} |",
        "| tag | first |",
        "| HTTP Error 404: Not Found | 2 |",
    ):
        assert line in artifact["data"]
    events = read_events(first_build.flow_run_id)
    assert len(events) == 1
    assert events[0].resource.id == "asif.anchors.anchors"
    payload = events[0].payload
    assert payload["table_uri"] == first_build.table_uri  # absolute, though given as "db"
    assert {k: payload[k] for k in ("table_name", "version", "version_before", "tag")} == {
        "table_name": "anchors",
        "version": s["version"],
        "version_before": 0,
        "tag": "first",
    }
    assert (payload["inserted"], payload["updated"], payload["rows"]) == (N_GOOD, 0, N_GOOD)
    assert payload["subset"]["url_list.file"] == "urls.parquet"
    assert payload["subset"]["url_list.rows_selected"] == str(N_GOOD + sum(BAD.values()))
    [record] = read_builds(TableLocation(first_build.table_uri))
    assert (record.version, record.subset, record.flow_run_id) == (
        s["version"], payload["subset"], first_build.flow_run_id
    )  # fmt: skip


def test_first_build_logs_progress_while_it_runs(api, first_build):
    logs = read_logs(api, first_build.flow_run_id)
    rates = [g for g in logs if re.search(r"\| \d[\d,]*\.\d pairs/s \| ETA", g["message"])]
    assert rates, [g["message"] for g in logs]
    last_commit = [g for g in logs if g["message"].startswith("committed batch")][-1]
    assert rates[0]["timestamp"] < last_commit["timestamp"]  # during the run, not at its end
    body = {
        "artifacts": {"key": {"any_": [PROGRESS_ARTIFACT_KEY]}},
        "limit": 10,
        "offset": 0,
        "sort": "CREATED_DESC",
    }
    progress = api.api("POST", "/artifacts/filter", body)
    mine = [a for a in progress if a["flow_run_id"] == first_build.flow_run_id]
    assert len(mine) == 1 and mine[0]["type"] == "progress" and mine[0]["data"] == 100.0


def test_second_run_with_more_urls_adds_only_new_rows(first_build, images):
    server, first, more = images
    root = first_build.work_dir.parent
    url_list = write_url_list(server, first + more, root / "more.parquet")
    hits_before = dict(server.hits)
    s = run_build(url_list, root, tag="second").summary
    assert (s["inserted"], s["updated"], s["rows"]) == (N_MORE, 0, N_GOOD + N_MORE)
    assert s["new_shards"] == 1 and s["skipped_shards"] == 3
    assert all(server.hits[p.path] == hits_before.get(p.path, 0) + 1 for p in more)
    assert all(server.hits[p.path] == hits_before[p.path] for p in first)
    table = AnchorTable.open(first_build.table_uri)
    assert set(table.read(["id"])["id"].to_pylist()) == expected_ids(server, first + more)
    assert table.tags()["second"] == s["version"]


def test_folder_of_captioned_images_builds_the_table(api, tmp_path):
    folder = write_image_folder(tmp_path / "images", 5, n_uncaptioned=1, n_corrupt=1)
    s = run_build(folder, tmp_path).summary
    assert (s["rows"], s["inserted"], s["downloaded"], s["download_failed"]) == (5, 5, 5, 2)
    assert s["failures_by_reason"] == {"missing caption": 1, "Image decoding error": 1}
    captions = AnchorTable.open(str(tmp_path / "db")).read(["caption"])["caption"].to_pylist()
    assert sorted(captions) == sorted(caption_of(seed) for seed in range(5))


def test_other_encoders_are_refused_before_any_download(first_build, images, tmp_path):
    server, first, _ = images
    url_list = write_url_list(server, first, tmp_path / "urls.parquet")
    rows_before, hits_before = len(AnchorTable.open(first_build.table_uri)), dict(server.hits)
    state = build_anchors(
        url_list=str(url_list),
        table_uri=first_build.table_uri,
        work_dir=str(tmp_path / "work"),
        quarantine_dir=str(tmp_path / "quarantine"),
        **{**FAST, "embed": {**FAST_EMBED, "image_encoder": "efficientnet-lite2"}},
        return_state=True,
    )
    assert state.is_failed()
    with pytest.raises(
        EncoderMismatchError,
        match="names image encoder 'efficientnet-lite2', .* from 'efficientnet-lite0'",
    ):
        state.result()
    assert server.hits == hits_before and not list((tmp_path / "work").glob("0*"))
    assert len(AnchorTable.open(first_build.table_uri)) == rows_before


def task_runs(server: PrefectServer, flow_run_id: str) -> dict[str, dict]:
    """The flow run's task runs, by task name."""
    body = {"flow_runs": {"id": {"any_": [flow_run_id]}}, "limit": 50, "offset": 0}
    runs = server.api("POST", "/task_runs/filter", body)
    return {r["name"].rsplit("-", 1)[0]: r for r in runs}


@pytest.mark.parametrize("existing", [True, False])
def test_a_bad_url_list_fails_at_once_with_its_reason_and_no_table_version(
    api, first_build, tmp_path, existing
):
    """Not retried (the same file fails the same way), the reason in the final state, and no
    new table version (nor a new table)."""
    table_uri = first_build.table_uri if existing else str(tmp_path / "db")
    versions = [v.version for v in AnchorTable.open(table_uri).versions()] if existing else []
    state = build_anchors(
        url_list=str(tmp_path / "missing.csv"),
        table_uri=table_uri,
        work_dir=str(tmp_path / "work"),
        quarantine_dir=str(tmp_path / "quarantine"),
        **FAST,
        return_state=True,
    )
    assert state.is_failed() and "missing.csv does not exist" in state.message
    download = task_runs(api, str(state.state_details.flow_run_id))["download-pairs"]
    assert download["state_type"] == "FAILED" and download["run_count"] == 1
    if existing:
        assert [v.version for v in AnchorTable.open(table_uri).versions()] == versions
    else:
        assert not (tmp_path / "db" / "anchors.lance").exists()


def test_bad_batch_is_quarantined_and_table_unchanged(
    api, first_build, images, monkeypatch, tmp_path
):
    server, _, _ = images
    extra = generate_pairs(3, start=100)
    server.add(extra)
    url_list = write_url_list(server, [p for p, _ in extra], tmp_path / "extra.parquet")

    def nan_blocks(shards, options):
        urls = [server.url(p) for p, _ in extra]
        image = np.full((3, 1280), np.nan, dtype=np.float32)
        text = np.eye(3, 384, dtype=np.float32)
        batch = build_anchor_batch(
            urls=urls,
            captions=[p.caption for p, _ in extra],
            widths=[10] * 3,
            heights=[10] * 3,
            image_embeddings=image,
            text_embeddings=text,
            shard=[Path(s).name for s in shards][0],
        )
        yield batch.append_column("error", pa.nulls(3, pa.string()))

    monkeypatch.setattr(asif.pipeline.embed, "embed_blocks", nan_blocks)
    table = AnchorTable.open(first_build.table_uri)
    version, rows = table.version, len(table)
    build = run_build(
        url_list,
        tmp_path,
        table_uri=first_build.table_uri,
        quarantine_dir=str(tmp_path / "quarantine"),
    )
    s = build.summary
    assert (s["quarantined_batches"], s["quarantined_rows"], s["inserted"]) == (1, 3, 0)
    assert (s["version"], s["rows"], s["changed"], s["tag"]) == (version, rows, False, None)
    assert AnchorTable.open(first_build.table_uri).version == version
    quarantined = Path(s["quarantine_paths"][0])
    assert quarantined.parent == tmp_path / "quarantine"
    assert (quarantined / "batch.parquet").is_file()
    assert read_events(build.flow_run_id, wait=2.0) == []
    assert "| quarantined batches | 1 |" in read_artifact(api, build.flow_run_id)["data"]


def test_killed_run_resumes_without_loss_or_duplicates(api, images, tmp_path):
    """SIGKILL the flow's process (a subprocess) after its first commit: nothing it started
    keeps running; a rerun marks the killed flow run Crashed and completes the table."""
    import psutil

    from tests.pipeline.test_session import gone

    server, first, more = images
    pairs = first + more
    url_list = write_url_list(server, pairs, tmp_path / "urls.parquet")
    params = {
        **FAST,
        "url_list": str(url_list),
        "table_uri": str(tmp_path / "db"),
        "work_dir": str(tmp_path / "work"),
        "quarantine_dir": str(tmp_path / "quarantine"),
        "embed": {**FAST_EMBED, "rows_per_batch": 4},
    }
    script = (
        "import json, sys\n"
        "from flows.build_anchors import build_anchors\n"
        "build_anchors(**json.loads(sys.argv[1]))\n"
    )
    log_path = tmp_path / "killed-run.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", script, json.dumps(params)],
            cwd=REPO,
            env={**api.env, "PYTHONPATH": str(REPO), "RAY_ADDRESS": ""},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    started: set[int] = set()
    try:
        deadline = time.monotonic() + 240
        while "committed batch 1:" not in log_path.read_text(errors="replace"):
            assert process.poll() is None, log_path.read_text(errors="replace")[-4000:]
            assert time.monotonic() < deadline, log_path.read_text(errors="replace")[-4000:]
            started |= {p.pid for p in psutil.Process(process.pid).children(recursive=True)}
            time.sleep(0.2)
        started |= {p.pid for p in psutil.Process(process.pid).children(recursive=True)}
    finally:
        process.send_signal(signal.SIGKILL)  # the process only: no `finally` of it runs
        process.wait(timeout=30)
    assert started and gone(sorted(started)), "processes left by the killed flow run"
    killed_rows = len(AnchorTable.open(params["table_uri"]))
    assert 0 < killed_rows < N_GOOD + N_MORE
    killed_run = json.loads((tmp_path / "work" / LOCK_NAME).read_text())["flow_run_id"]
    assert api.api("GET", f"/flow_runs/{killed_run}")["state"]["type"] == "RUNNING"

    s = run_build(url_list, tmp_path, embed=params["embed"]).summary
    table = AnchorTable.open(params["table_uri"])
    ids = table.read(["id"])["id"]
    assert s["rows"] == len(table) == N_GOOD + N_MORE
    assert pc.count_distinct(ids).as_py() == len(ids)
    assert set(ids.to_pylist()) == expected_ids(server, pairs)
    assert s["inserted"] == N_GOOD + N_MORE - killed_rows
    crashed = api.api("GET", f"/flow_runs/{killed_run}")["state"]
    assert crashed["type"] == "CRASHED" and "was killed" in crashed["message"]
