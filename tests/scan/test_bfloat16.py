import warnings

import numpy as np
import pytest
import torch

import asif.scan.bfloat16
import asif.scan.exact
from asif.model.relative import normalize_rows, relative_representation
from asif.model.settings import DEFAULT_P
from asif.scan.bfloat16 import OUTPUT_ROUNDING, _error_bound, bfloat16_topk
from asif.scan.bfloat16_rows import bfloat16_rows, bfloat16_scale, row_factors
from asif.scan.matrix import AnchorMatrix
from asif.scan.selection import floor_below
from tests.dense_reference import dense_relative, random_unit


def exact_topk(queries: np.ndarray, anchors: np.ndarray, k: int) -> tuple[np.ndarray, ...]:
    """float64 similarities (all, and the top k's indices: ties to the lower index)."""
    sims = normalize_rows(queries).astype(np.float64) @ anchors.astype(np.float64).T
    index = np.broadcast_to(np.arange(len(anchors)), sims.shape)
    return sims, np.lexsort((index, -sims), axis=1)[:, :k]


def assert_top_k(found, queries: np.ndarray, anchors: np.ndarray, k: int) -> None:
    """The k values are the k largest similarities, in order, each that of its index.

    Indices are not compared: float32 rounding may swap anchors whose values differ by ~1e-7.
    """
    values, indices = (t.numpy() for t in found)
    sims, top = exact_topk(queries, anchors, k)
    np.testing.assert_allclose(values, np.take_along_axis(sims, top, 1), atol=1e-6)
    np.testing.assert_allclose(values, np.take_along_axis(sims, indices, 1), atol=1e-6)
    assert (np.diff(values, axis=1) <= 0).all()
    assert all(len(set(row)) == k for row in indices.tolist())


def worst_rows(unit: np.ndarray, precision: str) -> np.ndarray:
    """Rows whose bfloat16 rows stray furthest from them at `precision`."""
    if precision == "float32":  # every bit below bfloat16's mantissa set: truncation's worst
        return (np.abs(unit).view(np.uint32) | 0xFFFF).view(np.float32) * np.sign(unit)
    if precision == "float16":  # halfway between two bfloat16 values: rounding's worst
        bits = unit.astype(np.float16).view(np.uint16)
        return ((bits & ~np.uint16(7)) | np.uint16(4)).view(np.float16).astype(np.float32)
    # int8 codes all +-127: each coordinate rounds alike, the residual runs along the row
    return normalize_rows(np.sign(unit)).astype(np.float32)


@pytest.mark.parametrize("precision", ["float32", "float16", "int8"])
@pytest.mark.parametrize("d", [8, 64, 384, 1000])
def test_error_bound_and_floors_hold(d, precision):
    rng = np.random.default_rng(d)
    unit = random_unit(rng, 3000, d)
    matrix = AnchorMatrix.from_float(np.concatenate([unit, worst_rows(unit[:200], precision)]))
    matrix = AnchorMatrix.from_float(matrix.to_float32(), precision)
    anchors = matrix.to_float32()  # what the scan must match: the dequantised rows
    rows = bfloat16_rows(matrix, 0, len(matrix), torch.empty(anchors.shape, dtype=torch.int16))
    scale, factors = bfloat16_scale(matrix), row_factors(matrix, 0, len(matrix)).numpy()
    # queries along the residuals `a - factor ab` of their anchors: the bound's anchor term
    # is then nearly reached (Cauchy-Schwarz with parallel vectors)
    residual = anchors - factors * rows.float().numpy()
    along = normalize_rows(residual[np.argsort(-np.linalg.norm(residual, axis=1))[:20]])
    queries = np.concatenate([random_unit(rng, 40, d), unit[:20], along])
    norms = matrix.row_norms()
    np.testing.assert_allclose(
        norms.residual[: len(matrix)], np.linalg.norm(residual, axis=1), 1e-5
    )
    q = torch.from_numpy(queries)
    qb = q.bfloat16()
    bound = _error_bound(q, qb, float(norms.norm.max()), float(norms.residual.max()), scale)
    bound = bound.numpy()
    # the scan's values: products, int8 ones times their rows' factors (scale 1)
    y = (qb @ rows.T).float().numpy().astype(np.float64) * (factors.T / scale)
    exact = queries.astype(np.float64) @ anchors.astype(np.float64).T
    error = np.abs(exact - scale * y) - scale * OUTPUT_ROUNDING * np.abs(y)
    assert (error <= bound[:, None]).all()
    assert bound.max() < 0.01  # and is tight enough to rule most anchors out
    # the floor: whatever reaches an anchor's similarity has a product at or above the floor
    # of that anchor's product
    y, exact, bound = (torch.from_numpy(x).float() for x in (y, exact, bound))
    order = torch.argsort(exact, dim=1)  # ascending: suffix minima over all that reach it
    by_exact = y.gather(1, order)
    reaching = by_exact.flip(1).cummin(1).values.flip(1)
    scan_floor = floor_below(
        by_exact.double().numpy(), 2 * bound[:, None].double().numpy(), OUTPUT_ROUNDING
    )
    assert (reaching.numpy() >= scan_floor).all()


@pytest.mark.parametrize(
    ("n_anchors", "d", "k", "chunk"),
    [
        (1, 8, 1, 100),  # a single anchor
        (50, 16, 50, 1000),  # k = N: negative k-th values, the float test
        (1000, 32, 800, 100_000),
        (1001, 32, 100, 320),  # N not a multiple of the chunk
        (997, 16, 250, 64),  # k > chunk
        (500, 8, 1, 7),  # k = 1, tiny chunks, widths not a multiple of the block
        (20_000, 384, 800, 3200),
        (12_000, 768, 37, 4096),
    ],
)
@pytest.mark.parametrize("precision", ["float32", "float16", "int8"])
def test_exact_top_k(n_anchors, d, k, chunk, precision):
    rng = np.random.default_rng(n_anchors + k)
    matrix = AnchorMatrix.from_float(random_unit(rng, n_anchors, d), precision)
    queries = normalize_rows(rng.normal(size=(11, d)))
    found = bfloat16_topk(queries, matrix, k, chunk)
    assert found is not None, "the bound left too many candidates"
    assert_top_k(found, queries, matrix.to_float32(), k)  # that of the dequantised rows


def test_order_below_bfloat16_resolution_is_decided_in_float32():
    # 3000 anchors in a cap of cosine ~0.99 to the queries: their similarities differ by
    # less than bfloat16's resolution there (2^-8), so float32 alone decides the top 10
    rng = np.random.default_rng(5)
    base = random_unit(rng, 1, 64)
    anchors = normalize_rows(base + 1e-2 * rng.normal(size=(3000, 64)))
    queries = normalize_rows(base + 1e-2 * rng.normal(size=(4, 64)))
    found = bfloat16_topk(queries, AnchorMatrix.from_float(anchors), 10, 512)
    assert found is not None
    sims, top = exact_topk(queries, anchors, 10)
    assert np.ptp(np.take_along_axis(sims, top, 1), axis=1).max() < 2.0**-8
    assert_top_k(found, queries, anchors, 10)


@pytest.mark.parametrize("precision", ["float32", "float16", "int8"])
def test_ties_keep_index_order(precision):
    rng = np.random.default_rng(3)
    anchors = random_unit(rng, 6, 16)[rng.integers(0, 6, 3000)]
    matrix = AnchorMatrix.from_float(anchors, precision)
    queries = random_unit(rng, 9, 16)
    found = bfloat16_topk(queries, matrix, 700, 256)
    assert found is not None
    want = exact_topk(queries, matrix.to_float32(), 700)[1]
    np.testing.assert_array_equal(found[1].numpy(), want)


def test_too_many_near_ties_fall_back_to_float32():
    # 20,000 anchors of two directions: 10,000 exact ties at the top, more than the limit
    anchors = np.tile(np.eye(2, 8, dtype=np.float32), (10_000, 1))
    queries = np.array([[1, 0.5, 0, 0, 0, 0, 0, 0], [0.5, 1, 0, 0, 0, 0, 0, 0]], np.float32)
    assert bfloat16_topk(queries, AnchorMatrix.from_float(anchors), 5, 4096) is None
    rel = relative_representation(queries, anchors, k=5, p=2, bfloat16=True)
    np.testing.assert_allclose(rel.to_dense(), dense_relative(queries, anchors, 5, 2), atol=1e-6)


def test_used_by_default_for_many_float32_anchors(monkeypatch):
    rng = np.random.default_rng(6)
    anchors, queries = random_unit(rng, 3000, 32), random_unit(rng, 5, 32)
    calls = []

    def spy(*args: object) -> object:
        calls.append(args)
        return bfloat16_topk(*args)

    monkeypatch.setattr(asif.scan.exact, "bfloat16_topk", spy)
    monkeypatch.setattr(asif.scan.exact, "native_bfloat16", lambda: True)
    relative_representation(queries, anchors, k=40)
    assert not calls, "below BFLOAT16_MIN_ANCHORS"
    monkeypatch.setitem(asif.scan.exact.BFLOAT16_MIN_ANCHORS, "float32", 1000)
    relative_representation(queries, AnchorMatrix.from_float(anchors, "float16"), k=40)
    assert not calls, "below float16's BFLOAT16_MIN_ANCHORS"
    rel = relative_representation(queries, anchors, k=40)
    assert len(calls) == 1
    monkeypatch.setitem(asif.scan.exact.BFLOAT16_MIN_ANCHORS, "int8", 1000)
    relative_representation(queries, AnchorMatrix.from_float(anchors, "int8"), k=40)
    assert len(calls) == 2
    expected = dense_relative(queries, anchors, 40, DEFAULT_P)
    np.testing.assert_allclose(rel.to_dense(), expected, atol=1e-5)
    monkeypatch.setattr(asif.scan.exact, "native_bfloat16", lambda: False)
    relative_representation(queries, anchors, k=40)
    assert len(calls) == 2, "not on CPUs without native bfloat16"


@pytest.mark.parametrize("precision", ["float16", "int8"])
def test_scans_memory_mapped_rows(tmp_path, precision):
    # as a saved model is read (`read_folder`): the rows stay on disk, paged in chunk by chunk
    rng = np.random.default_rng(11)
    held = AnchorMatrix.from_float(random_unit(rng, 5000, 48), precision)
    np.save(tmp_path / "rows.npy", held.data)
    mapped = AnchorMatrix(np.load(tmp_path / "rows.npy", mmap_mode="r"), held.scale)
    assert not mapped.data.flags.writeable and not mapped.data.flags.owndata  # the map itself
    queries = random_unit(rng, 9, 48)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # read-only maps are read without torch's warning
        found = bfloat16_topk(queries, mapped, 300, 1024)
    assert found is not None
    assert_top_k(found, queries, held.to_float32(), 300)
    want = bfloat16_topk(queries, held, 300, 1024)
    assert want is not None and all(torch.equal(a, b) for a, b in zip(found, want, strict=True))
