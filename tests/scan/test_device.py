"""The device scan, run here on torch's CPU device: the same code a GPU runs."""

import numpy as np
import pytest
import torch

import asif.scan.exact
from asif.errors import SettingsError
from asif.scan.device import default_device, device_topk
from asif.scan.exact import ExactScan, exact_topk
from asif.scan.matrix import AnchorMatrix
from tests.dense_reference import random_unit


def lexsorted_top_k(queries: np.ndarray, anchors: np.ndarray, k: int) -> tuple[np.ndarray, ...]:
    full = queries @ anchors.T
    index = np.broadcast_to(np.arange(len(anchors)), full.shape)
    order = np.lexsort((index, -full), axis=1)[:, :k]
    return np.take_along_axis(full, order, 1), order


@pytest.mark.parametrize("precision", ["float32", "float16", "int8"])
@pytest.mark.parametrize(
    ("n", "k", "chunk"),
    [(1000, 10, 96), (1001, 300, 128), (50, 50, 7), (700, 1, 700), (997, 250, 64)],
)
def test_equals_the_cpu_scan(n, k, chunk, precision):
    # chunk edges (N not a multiple of the chunk), k = N, k > chunk, k = 1, one chunk
    rng = np.random.default_rng(n + k)
    matrix = AnchorMatrix.from_float(random_unit(rng, n, 24), precision)
    queries = random_unit(rng, 9, 24)
    sims, rows = (t.numpy() for t in device_topk(queries, matrix, k, chunk, "cpu"))
    want_sims, want_rows = lexsorted_top_k(queries, matrix.to_float32(), k)
    np.testing.assert_allclose(sims, want_sims, atol=1e-6)
    np.testing.assert_array_equal(rows, want_rows)


@pytest.mark.parametrize("chunk", [64, 1000, 333])
def test_ties_go_to_the_lower_row(chunk):
    rng = np.random.default_rng(chunk)
    anchors = random_unit(rng, 5, 16)[rng.integers(0, 5, 1000)]  # every value tied ~200 times
    queries = random_unit(rng, 7, 16)
    _, rows = device_topk(queries, AnchorMatrix.from_float(anchors), 250, chunk, "cpu")
    np.testing.assert_array_equal(rows.numpy(), lexsorted_top_k(queries, anchors, 250)[1])


def test_rows_are_copied_once_and_follow_appends():
    rng = np.random.default_rng(1)
    matrix = AnchorMatrix.from_float(random_unit(rng, 100, 8), "int8").reserve(20)
    cpu = torch.device("cpu")
    resident = matrix.on_device(cpu)
    assert resident.ready == 100 and matrix.on_device(cpu) is resident
    grown = matrix.append(random_unit(rng, 10, 8))
    assert grown.on_device(cpu) is resident and resident.ready == 110  # the new rows only
    np.testing.assert_array_equal(resident.chunk(0, 110).numpy(), grown.to_float32())


def test_scans_run_on_the_device_asked_for(monkeypatch):
    rng = np.random.default_rng(2)
    matrix = AnchorMatrix.from_float(random_unit(rng, 100, 8))
    queries = random_unit(rng, 3, 8)
    calls = []

    def on_cpu_instead(queries, anchors, k, chunk_size, device):
        calls.append(device)
        return device_topk(queries, anchors, k, chunk_size, "cpu")

    monkeypatch.setattr(asif.scan.exact, "device_topk", on_cpu_instead)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # as if a GPU were there
    monkeypatch.setattr(asif.scan.exact, "QUERY_BATCH", 2)  # query batches bound GPU memory
    want = exact_topk(queries, matrix, 7, device="cpu")  # the CPU scan
    assert not calls
    scan = ExactScan(matrix, matrix, chunk_size=32)  # by default, on the GPU
    np.testing.assert_array_equal(scan.topk(queries, "image", 7)[1], want[1])
    assert exact_topk(queries, matrix, 500, device="cuda:1")[1].shape == (3, 100)
    assert calls == ["cuda", "cuda", "cuda:1", "cuda:1"]


def test_default_and_bad_devices(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert default_device() == "cpu"  # the CPU scan
    with pytest.raises(SettingsError, match="sees no CUDA GPU"):
        ExactScan(AnchorMatrix.from_float(np.eye(2, dtype=np.float32)),
                  AnchorMatrix.from_float(np.eye(2, dtype=np.float32)), device="cuda")  # fmt: skip
    with pytest.raises(SettingsError, match="torch device name"):
        ExactScan(AnchorMatrix.from_float(np.eye(2, dtype=np.float32)),
                  AnchorMatrix.from_float(np.eye(2, dtype=np.float32)), device="gpu0")  # fmt: skip
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert default_device() == "cuda"


def test_warns_when_tf32_would_round_the_products():
    matrix = AnchorMatrix.from_float(random_unit(np.random.default_rng(3), 20, 8))
    was = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = True
    try:
        with pytest.warns(UserWarning, match="allow_tf32 is on"):
            device_topk(random_unit(np.random.default_rng(4), 2, 8), matrix, 5, 8, "cpu")
    finally:
        torch.backends.cuda.matmul.allow_tf32 = was
