"""The batch runners: `LocalBatches` joins its batches in row order whatever the batch size,
and `RayBatches` on a separate Ray head (picked by RAY_ADDRESS) gives exactly the local run's
evaluation rows, classification and retrieval."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from asif.datasets import fashion_mnist
from asif.evaluation.batches import (
    DEFAULT_BATCH,
    BatchFn,
    BatchRunner,
    Columns,
    LocalBatches,
    RayBatches,
    default_runner,
)
from asif.evaluation.benchmarks import AnyBenchmark, load_benchmark
from asif.evaluation.evaluate import evaluate_version
from asif.evaluation.evaluations_table import Row
from tests.evaluation.shared import TEST_LIMIT
from tests.infra.services import ray_head

REPO = Path(__file__).resolve().parents[2]
SMALL_BATCH = 7
"""Scoring batches in the Ray test: several per benchmark, so rows could come back unordered."""
CAPTIONED_IMAGES = 20
VOLATILE = ("run_id", "evaluated_at", "embed_seconds", "asif_seconds")
"""Row fields that differ between any two runs."""


def _columns(shared: dict[str, np.ndarray], start: int, stop: int) -> Columns:
    """A deterministic batch function with 1-d and 2-d columns of several dtypes."""
    rows = np.arange(start, stop)
    return {
        "x": shared["x"][start:stop],
        "pair": np.stack([rows, rows * rows], axis=1).astype(np.int32),
        "even": rows % 2 == 0,
    }


SHARED = {"x": np.random.default_rng(0).normal(size=40).astype(np.float32)}


def test_local_batches_are_in_row_order():
    got = LocalBatches().map(_columns, SHARED, 40, 6)
    assert sorted(got) == ["even", "pair", "x"]  # the runner's row column is dropped
    np.testing.assert_array_equal(got["x"], SHARED["x"])
    np.testing.assert_array_equal(got["pair"][:, 0], np.arange(40))
    assert got["pair"].dtype == np.int32 and got["x"].dtype == np.float32


@pytest.mark.parametrize("batch_size", [1, 3, 40 + 5])
def test_local_batches_do_not_depend_on_the_batch_size(batch_size):
    want = _columns(SHARED, 0, 40)
    got = LocalBatches().map(_columns, SHARED, 40, batch_size)
    assert sorted(got) == sorted(want)
    for name, column in want.items():
        assert got[name].dtype == column.dtype and got[name].shape == column.shape
        np.testing.assert_array_equal(got[name], column)


def test_no_rows_give_the_functions_empty_columns():
    for runner in (LocalBatches(), RayBatches()):  # Ray is not started for no rows
        got = runner.map(_columns, SHARED, 0)
        assert {k: (v.shape, v.dtype) for k, v in got.items()} == {
            "x": ((0,), np.float32),
            "pair": ((0, 2), np.int32),
            "even": ((0,), np.bool_),
        }


def test_local_progress_is_off_by_default(capsys):
    LocalBatches().map(_columns, SHARED, 40, 4, desc="quiet")
    LocalBatches(progress=True).map(_columns, SHARED, 40, 4, desc="loud")
    err = capsys.readouterr().err
    assert "quiet" not in err and "loud" in err


@pytest.mark.parametrize("runner", [LocalBatches(), RayBatches()])
@pytest.mark.parametrize("batch_size", [0, -3])
def test_a_bad_batch_size_is_an_error(runner, batch_size):
    with pytest.raises(ValueError, match="batch_size"):
        runner.map(_columns, SHARED, 40, batch_size)


def test_the_default_runner_follows_ray_address(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert isinstance(default_runner(), LocalBatches)
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:1")
    assert isinstance(default_runner(progress=True), RayBatches)


class FixedBatches:
    """`runner` with every map cut into `batch_size` rows (scoring's own default is too large
    to cut a test benchmark into several batches)."""

    def __init__(self, runner: BatchRunner, batch_size: int = SMALL_BATCH) -> None:
        self.runner = runner
        self.batch_size = batch_size

    def map(
        self, fn: BatchFn, shared: Any, n: int, batch_size: int = DEFAULT_BATCH, desc: str = ""
    ) -> Columns:
        return self.runner.map(fn, shared, n, self.batch_size, desc)


def captioned_folder(root: Path) -> Path:
    """`CAPTIONED_IMAGES` Fashion-MNIST test images as PNGs, each with a one-line caption."""
    data = fashion_mnist("test")
    root.mkdir(parents=True)
    for i in range(CAPTIONED_IMAGES):
        name = data.class_names[data.labels[i]].lower()
        Image.fromarray(data.images[i]).save(root / f"{i:02d}.png")
        (root / f"{i:02d}.txt").write_text(f"a photo of a {name}\n")
    return root


def benchmarks(folder: str | Path) -> list[AnyBenchmark]:
    return [
        load_benchmark("fashion-mnist", "test", limit=TEST_LIMIT),
        load_benchmark("captioned-folder", "test", folder),
    ]


def stable(rows: list[Row]) -> list[dict]:
    """The rows without their run-specific fields, as JSON values (NaN as the string)."""
    fields = [{k: v for k, v in row.items() if k not in VOLATILE} for row in rows]
    return json.loads(json.dumps(fields, default=repr), parse_constant=str)


ON_RAY = """
import json, sys
import ray
from asif.evaluation import evaluate
from asif.evaluation.batches import default_runner
from asif.evaluation.embedding_cache import EmbeddingCache
from asif.store.table import AnchorTable
from tests.evaluation.test_batches import FixedBatches, benchmarks, stable
args = json.loads(sys.argv[1])
runners = []
def fixed_default_runner(progress=False):
    runner = default_runner(progress)
    runners.append(type(runner).__name__)
    return FixedBatches(runner)
evaluate.default_runner = fixed_default_runner
table, cache = AnchorTable.open(args["table"]), EmbeddingCache(args["cache"])
rows = evaluate.evaluate_version(table, benchmarks(args["folder"]), cache=cache)
result = {"rows": stable(rows), "runners": runners, "gcs": ray.get_runtime_context().gcs_address}
print("RESULT", json.dumps(result))
"""


def test_ray_evaluation_is_the_local_one(anchor_table, cache, tmp_path):
    """evaluate_version on a Ray head (the default runner, as RAY_ADDRESS is set) scores
    every benchmark exactly as here, in several batches, so any row out of order would show."""
    folder = captioned_folder(tmp_path / "captioned")
    # the same batches here (a batch's products can differ in the last bits from another
    # shape's); embeds the benchmarks into the cache the Ray run then reads
    local = evaluate_version(
        anchor_table, benchmarks(folder), cache=cache, runner=FixedBatches(LocalBatches())
    )
    assert local[0]["acc1"] is not None and local[1]["image_retrieval_recall_at_1"] is not None
    args = {"table": anchor_table.uri, "folder": str(folder), "cache": str(cache.root)}
    with ray_head(tmp_path / "ray", num_cpus=2) as head:
        done = subprocess.run(
            [sys.executable, "-c", ON_RAY, json.dumps(args)],
            cwd=REPO,
            env={**head.env, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    result = json.loads(line.removeprefix("RESULT "), parse_constant=str)
    assert result["gcs"] == head.address
    assert result["runners"] == ["RayBatches"]
    assert result["rows"] == stable(local)
