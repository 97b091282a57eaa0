"""The `asif` command line on the model the demo saved: classify, explain, info, and bad input
turned into one line on stderr and exit status 2; `asif build-anchors` on a local image server."""

import dataclasses
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from asif.cli import build_parser, main
from asif.datasets import fashion_mnist
from asif.model.settings import DEFAULT_K, DEFAULT_P
from tests.demo_run import IMAGE_ENCODER, demo_result

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def demo():
    return demo_result()


@pytest.fixture(scope="module")
def image_files(tmp_path_factory):
    test = fashion_mnist("test")
    folder = tmp_path_factory.mktemp("images")
    paths = []
    for i in (0, 1, 2):  # ankle boot, pullover, trouser
        path = folder / f"item{i}.png"
        Image.fromarray(test.images[i]).save(path)
        paths.append(str(path))
    return paths, [test.class_names[c] for c in test.labels[:3]]


def test_settings_default_to_the_model_s_as_in_serve():
    parser = build_parser()
    demo = parser.parse_args(["demo"])
    classify = parser.parse_args(["classify", "x.png", "--labels", "a"])
    serve = parser.parse_args(["serve", "--table", "db"])
    assert demo.k is None and classify.k is None  # None: the model's own (default) k
    assert (serve.k, serve.p) == (DEFAULT_K, DEFAULT_P)


def test_cli_classify_and_explain(demo, image_files, capsys):
    paths, truth = image_files
    labels = ",".join(demo.prediction.class_names)
    assert main(["classify", *paths, "--model", str(demo.model_path), "--labels", labels,
                 "--json"]) == 0  # fmt: skip
    rows = json.loads(capsys.readouterr().out)
    assert [r["image"] for r in rows] == paths
    assert sum(r["label"] == t for r, t in zip(rows, truth, strict=True)) >= 2
    assert main(["explain", paths[0], "--model", str(demo.model_path), "--labels", labels,
                 "--top", "3", "--k", "20"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "because of" in out and out.count("fashion-mnist-train#") == 3


def test_cli_unknown_threshold_and_table(demo, image_files, capsys):
    paths, _ = image_files
    args = ["classify", *paths, "--model", str(demo.model_path), "--labels", "bag,sneaker"]
    assert main([*args, "--threshold", "2.0"]) == 0  # scores never reach 2
    out = capsys.readouterr().out
    assert out.count("unknown") == 3
    assert out.splitlines()[0].split()[:3] == ["image", "label", "score"]


@pytest.mark.parametrize(
    "options, message",
    [
        (["--labels", " , "], "labels are empty"),
        (["--labels", "a,,b"], "labels contain an empty class name"),
        (["--labels", "a,b", "--template", "a photo"], "must contain exactly one '{}'"),
        (["--labels", "a,b", "--template", "{0.__class__}"], "must contain exactly one '{}'"),
        (["--labels", "a,b", "--strategy", "median"], "strategy must be one of"),
        (["--labels", "a,b", "--k", "0"], "k must be a positive integer"),
    ],
)
def test_library_errors_are_one_line_and_status_2(demo, image_files, capsys, options, message):
    """The library refuses the input (an AsifError); the CLI only reports it."""
    command = ["classify", image_files[0][0], "--model", str(demo.model_path), *options]
    assert main(command) == 2
    err = capsys.readouterr().err
    assert err.startswith("asif classify: error: ") and message in err
    assert len(err.strip().splitlines()) == 1


def test_cli_file_errors_are_clear(demo, tmp_path, capsys):
    bad = tmp_path / "not-an-image.jpg"
    bad.write_text("hello")
    assert main(["classify", str(bad), "--model", str(demo.model_path), "--labels", "a,b"]) == 2
    assert "not-an-image.jpg" in capsys.readouterr().err
    assert main(["classify", str(bad), "--model", str(tmp_path), "--labels", "a"]) == 2
    assert "not a saved ASIF model" in capsys.readouterr().err
    assert main(["serve", "--table", str(tmp_path / "nowhere")]) == 2
    assert "no anchor table 'anchors'" in capsys.readouterr().err


def test_demo_refuses_someone_else_s_folder(tmp_path, capsys):
    mine = tmp_path / "photos"
    mine.mkdir()
    (mine / "holiday.png").write_bytes(b"not ours")
    assert main(["demo", "--pairs-dir", str(mine), "--output", str(tmp_path / "model")]) == 2
    assert "photos is not empty" in capsys.readouterr().err
    assert (mine / "holiday.png").read_bytes() == b"not ours"


def test_cli_info(demo, capsys):
    assert main(["info", "--model", str(demo.model_path)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["n_anchors"] == 400 and info["image_encoder"] == IMAGE_ENCODER
    assert info["k"] == DEFAULT_K and np.isclose(info["p"], DEFAULT_P)


# ---------------------------------------------------------------- build-anchors

BUILD_OPTIONS = [
    "--image-encoder", "efficientnet-lite0", "--samples-per-shard", "8", "--image-size", "64",
    "--threads", "2", "--batch-size", "4", "--rows-per-batch", "4", "--cpus-per-actor", "0.5",
]  # fmt: skip
RATE = re.compile(r"\| \d[\d,]*\.\d pairs/s \|")


def test_build_anchors_options_mirror_the_flow_s_parameters():
    import inspect

    from asif.pipeline.download import DownloadOptions
    from asif.pipeline.embed import EmbedOptions
    from asif.pipeline.url_list import UrlListOptions
    from flows.build_anchors import build_anchors

    parser = build_parser()
    args = parser.parse_args(
        ["build-anchors", "cc12m.tsv", "--url-col", "0", "--caption-col", "caption",
         "--no-header", "--sample", "9", "--seed", "3", "--resize-mode", "border",
         "--use-gpu", "--cpus-per-actor", "0.5"]
    )  # fmt: skip
    assert (args.url_col, args.caption_col, args.header, args.sample, args.seed) == (
        0, "caption", False, 9, 3
    )  # fmt: skip
    assert (args.resize_mode, args.use_gpu, args.cpus_per_actor) == ("border", True, 0.5)
    assert not hasattr(args, "limit")  # left out: the dataclass's default
    actions = parser._subparsers._group_actions[0].choices["build-anchors"]._actions
    options = {a.dest for a in actions}
    helps = {a.dest: a.help for a in actions}
    assert (helps["limit"], helps["num_actors"]) == ("default: all rows", "default: auto")
    for cls in (UrlListOptions, DownloadOptions, EmbedOptions):
        assert {f.name for f in dataclasses.fields(cls)} <= options
    flow = set(inspect.signature(build_anchors.fn).parameters) - {"storage_options"}
    renamed = {"table_uri": "table", "progress_seconds": "progress_every"}
    assert {renamed.get(p, p) for p in flow} - {"source", "download", "embed"} <= options
    with pytest.raises(SystemExit):
        parser.parse_args(["build-anchors", "x.csv", "--resize-mode", "stretch"])


def test_build_anchors_bad_input_is_one_line_and_writes_no_table(tmp_path, capsys):
    common = ["--table", str(tmp_path / "db"), "--work-dir", str(tmp_path / "work")]
    assert main(["build-anchors", str(tmp_path / "missing.csv"), *common, *BUILD_OPTIONS]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "missing.csv" in line]
    assert err == [f"asif build-anchors: error: url list {tmp_path / 'missing.csv'} does not "
                   "exist or is not a file"]  # fmt: skip
    assert not (tmp_path / "db" / "anchors.lance").exists()
    with pytest.raises(SystemExit):  # an option the url list reader refuses: a usage error
        main(["build-anchors", "x.csv", "--limit", "3", "--sample", "4"])
    assert "at most one of limit, sample and fraction" in capsys.readouterr().err


class LineReader:
    """Collects a process's stderr lines with their arrival times, from a thread."""

    def __init__(self, stream) -> None:
        self.lines: list[tuple[float, str]] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            self.lines.append((time.monotonic(), line.rstrip("\n")))

    def text(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def join(self) -> None:
        self._thread.join(timeout=30)


def test_build_anchors_end_to_end_killed_then_resumed(tmp_path):
    """`asif build-anchors` on a local list: live progress lines with pairs/s long before the
    end; SIGKILLed after its first commit it leaves no process behind; the rerun says so,
    resumes, and prints the summary; the subset is recorded with the version."""
    import psutil

    from asif.pipeline.ledger import build_of
    from asif.store.location import TableLocation
    from asif.store.table import AnchorTable
    from tests.http_fixtures import ImageServer, generate_pairs, write_url_list
    from tests.pipeline.test_session import gone

    items = generate_pairs(24, n_missing=2, n_html=1)
    cmd = [sys.executable, "-m", "asif.cli", "build-anchors", str(tmp_path / "urls.csv"),
           "--table", "db", "--limit", "26", "--progress-every", "0.5", *BUILD_OPTIONS]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PYTHONPATH=str(REPO), RAY_ADDRESS="", PREFECT_HOME=str(tmp_path / "prefect"))
    with ImageServer(items) as server:
        server.delay = 0.2  # a download of several seconds
        write_url_list(server, [p for p, _ in items], tmp_path / "urls.csv")
        killed = subprocess.Popen(
            cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True, start_new_session=True,
        )  # fmt: skip
        log, started = LineReader(killed.stderr), set()
        try:
            deadline = time.monotonic() + 300
            while "committed batch 1:" not in log.text():
                assert killed.poll() is None and time.monotonic() < deadline, log.text()[-4000:]
                started |= {p.pid for p in psutil.Process(killed.pid).children(recursive=True)}
                time.sleep(0.1)
            started |= {p.pid for p in psutil.Process(killed.pid).children(recursive=True)}
        finally:
            killed.kill()  # SIGKILL, the process only: no `finally` of it runs
            killed.wait()
        log.join()
        assert started and gone(sorted(started)), "processes left by the killed build"
        rates = [t for t, line in log.lines if line.startswith("download ") and RATE.search(line)]
        committed = next(t for t, line in log.lines if line.startswith("committed batch 1:"))
        assert rates and rates[0] < committed - 1.0, log.text()  # live, not at the end

        server.delay = 0.0
        rerun = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                               timeout=300)  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr[-4000:]
    # the flow ran (on a temporary Prefect server): it marks the killed run's flow run Crashed
    assert "was killed before it finished; this run resumes its work" in rerun.stderr
    assert re.search(r"marked flow run \S+ \([0-9a-f-]{36}\) Crashed", rerun.stderr)
    assert any(
        line.startswith("embed ") and RATE.search(line) for line in rerun.stderr.splitlines()
    )
    summary = dict(
        line.rsplit(None, 1) for line in rerun.stdout.splitlines() if line and line[0] != " "
    )
    location = TableLocation(str(tmp_path / "db"))
    table = AnchorTable.open(location.uri)
    assert len(table) == int(summary["table rows"]) == 24
    assert int(summary["inserted"]) < 24  # the killed run committed the others
    record = build_of(location, table.version)
    assert record is not None and record.subset["url_list.subset"] == "limit=26"
    assert record.subset["url_list.rows_selected"] == "26"
