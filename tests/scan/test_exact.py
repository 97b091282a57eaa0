import numpy as np
import pytest
import torch

import asif.scan.exact
from asif.errors import EmptyInputError, SettingsError
from asif.scan.exact import ExactScan, exact_topk
from asif.scan.matrix import AnchorMatrix
from tests.dense_reference import random_unit


def scan_of(rng, n=300, di=16, dt=8, **kw):
    return ExactScan(
        AnchorMatrix.from_float(random_unit(rng, n, di)),
        AnchorMatrix.from_float(random_unit(rng, n, dt)),
        **kw,
    )


@pytest.mark.parametrize(("n", "k", "chunk"), [(300, 10, 64), (50, 800, 7), (301, 300, 300)])
def test_topk_is_the_sorted_exact_top_k(n, k, chunk):
    rng = np.random.default_rng(n)
    scan = scan_of(rng, n=n, chunk_size=chunk)
    q = random_unit(rng, 7, 16)
    sims, rows = scan.topk(q, "image", k)
    full = q @ scan.image.to_float32().T
    order = np.lexsort((np.broadcast_to(np.arange(n), full.shape), -full), axis=1)[:, :k]
    np.testing.assert_array_equal(rows, order)
    np.testing.assert_allclose(sims, np.take_along_axis(full, order, 1), atol=1e-6)
    assert scan.topk(random_unit(rng, 2, 8), "text", k)[1].shape == (2, min(k, n))


@pytest.mark.parametrize(("k", "chunk"), [(10, 320), (9, 320), (3, 96), (10, 330)])
def test_block_maxima_selection_keeps_ties_in_index_order(k, chunk):
    # 8 distinct anchors repeated: every k-th value is tied many times over, in every chunk;
    # chunks of at least k blocks of 32 are selected through their block maxima
    rng = np.random.default_rng(k)
    anchors = random_unit(rng, 8, 16)[rng.integers(0, 8, 1000)]
    queries = random_unit(rng, 6, 16)
    sims, rows = exact_topk(queries, AnchorMatrix.from_float(anchors), k, chunk, bfloat16=False)
    full = queries @ anchors.T
    order = np.lexsort((np.broadcast_to(np.arange(1000), full.shape), -full), axis=1)[:, :k]
    np.testing.assert_array_equal(rows, order)
    np.testing.assert_allclose(sims, np.take_along_axis(full, order, 1), atol=1e-6)


def test_ties_go_to_the_lower_row():
    rows = np.tile(np.eye(4, dtype=np.float32)[:1], (9, 1))  # nine equal anchors
    sims, found = exact_topk(np.eye(4, dtype=np.float32)[:1], AnchorMatrix.from_float(rows), 3, 2)
    assert found.tolist() == [[0, 1, 2]] and np.allclose(sims, 1)


def test_editing_makes_new_scans_and_keeps_settings():
    rng = np.random.default_rng(1)
    scan = scan_of(rng, n=20, chunk_size=5, bfloat16=False)
    grown = scan.append(random_unit(rng, 3, 16), random_unit(rng, 3, 8))
    assert (scan.n_rows, grown.n_rows) == (20, 23) and grown.chunk_size == 5
    assert grown.bfloat16 is False
    taken = grown.take(np.array([0, 22]))
    np.testing.assert_array_equal(taken.text.to_float32()[1], grown.text.to_float32()[22])
    assert grown.delete(np.array([1, 2])).n_rows == 21
    small = scan.compress("int8")
    assert small.precision == "int8" and small.image.nbytes < scan.image.nbytes


def test_bad_scans_and_arguments():
    rng = np.random.default_rng(2)
    with pytest.raises(ValueError, match="5 image but 4 text"):
        ExactScan(AnchorMatrix.from_float(random_unit(rng, 5, 4)),
                  AnchorMatrix.from_float(random_unit(rng, 4, 4)))  # fmt: skip
    with pytest.raises(SettingsError, match="chunk_size"):
        scan_of(rng, chunk_size=0)
    with pytest.raises(SettingsError, match="k and chunk_size"):
        scan_of(rng).topk(random_unit(rng, 1, 16), "image", 0)
    with pytest.raises(EmptyInputError):
        exact_topk(random_unit(rng, 1, 4), AnchorMatrix.from_float(np.zeros((0, 4), np.float32)), 3)


def test_leaves_torch_thread_count_as_it_was(monkeypatch):
    rng = np.random.default_rng(9)
    anchors, queries = random_unit(rng, 300, 16), random_unit(rng, 5, 16)
    before = torch.get_num_threads()
    exact_topk(queries, AnchorMatrix.from_float(anchors), 10, 64)
    assert torch.get_num_threads() == before

    def interrupted(*_args: object) -> None:
        assert torch.get_num_threads() == 1
        raise KeyboardInterrupt

    monkeypatch.setattr(asif.scan.exact, "_topk_scan", interrupted)
    with pytest.raises(KeyboardInterrupt):
        exact_topk(queries, AnchorMatrix.from_float(anchors), 10)
    assert torch.get_num_threads() == before
