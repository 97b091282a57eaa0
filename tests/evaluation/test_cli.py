"""`asif evaluate`: a version's benchmarks from the command line, stored, exported in
CLIP_benchmark's format, and the paper's table; bad input is one line and status 2."""

from __future__ import annotations

import json

import pytest

from asif.cli import main
from asif.evaluation.evaluations_table import EvaluationsTable
from asif.evaluation.paper import PAPER_ACC1
from tests.evaluation.shared import TEST_LIMIT, K, make_anchor_table, session_cache_dir


@pytest.fixture
def table(tmp_path, monkeypatch):
    monkeypatch.setenv("ASIF_EVAL_CACHE", str(session_cache_dir()))
    return make_anchor_table(tmp_path / "db")


def _evaluate(table, *options):
    common = ["--table", table.uri, "--k", str(K), "--limit", str(TEST_LIMIT), "--quiet"]
    return main(["evaluate", *common, *options])


def test_paper_table_on_the_shipped_data(table, tmp_path, capsys):
    out = tmp_path / "results"
    assert _evaluate(table, "--paper", "--benchmark", "fashion-mnist", "--output", str(out)) == 0
    printed = capsys.readouterr().out
    (row,) = EvaluationsTable.open(table.uri).read().to_pylist()
    assert row["benchmark"] == "fashion-mnist" and row["k"] == K
    assert f"anchors version {table.version} ({len(table):,} anchors), k={K}" in printed
    assert f"| fashion-mnist | {TEST_LIMIT} | {len(table)} |" in printed  # the paper table
    for name in PAPER_ACC1:
        assert f"not evaluated (--benchmark {name}=ROOT)" in printed
    assert (out / "paper.md").read_text().strip() in printed
    (result,) = (out / "clip_benchmark").glob("*.json")
    stored = json.loads(result.read_text())
    assert stored["metrics"]["acc1"] == row["acc1"] and stored["pretrained"].endswith(
        f"-v{table.version}"
    )
    assert {p.name for p in out.iterdir()} >= {"results.csv", "unknown.png", "paper.png"}


def test_version_by_tag_and_default_output_folder(table, capsys):
    table.tag("baseline", table.version)
    assert _evaluate(table, "--version", "baseline") == 0
    printed = capsys.readouterr().out
    folder = table.uri + f"/evaluation-plots/anchors-v{table.version}/results.csv"
    assert f"CLIP_benchmark results: {folder}" in printed
    assert "acc1" in printed and "mean_per_class_recall" in printed


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--paper"], "--paper needs the benchmarks' data"),
        (["--benchmark", "nope"], "unknown benchmark 'nope'"),
        (["--benchmark", "cifar100"], "CIFAR needs root="),
        (["--benchmark", "coco=/nowhere"], "/nowhere"),
        (["--k", "0"], "k"),
        (["--version", "99"], "99"),
    ],
)
def test_bad_input_is_one_line_and_status_2(table, capsys, options, message):
    assert _evaluate(table, *options) == 2
    err = capsys.readouterr().err
    assert err.startswith("asif evaluate: error:") and message in err
    assert len(err.strip().splitlines()) == 1
