import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from asif.scan.selection import BLOCK, Selection, _first_floor, floor_below

ROUNDING = 2.0**-8


@st.composite
def chunks(draw: st.DrawFn) -> tuple[list[np.ndarray], int, int]:
    """Rows streamed in chunks of ragged widths (block edges, widths under a block), values
    from a small set (ties everywhere) or a wide one, and a k up to all entries."""
    n = draw(st.integers(1, 3))
    widths = draw(st.lists(st.integers(1, 3 * BLOCK + 5), min_size=1, max_size=5))
    distinct = draw(st.sampled_from([2, 5, 1000]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    parts = [
        (rng.integers(-distinct, distinct, (n, w)) / distinct).astype(np.float32) for w in widths
    ]
    k = draw(st.integers(1, sum(widths)))
    room = draw(st.sampled_from([None, 0]))  # the default, or the least: compactions often
    return parts, k, room


def reference(parts: list[np.ndarray], k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's k best by (value descending, index ascending)."""
    full = np.concatenate(parts, axis=1)
    index = np.broadcast_to(np.arange(full.shape[1]), full.shape)
    order = np.lexsort((index, -full), axis=1)[:, :k]
    return np.take_along_axis(full, order, 1), order


@settings(max_examples=300, deadline=None)
@given(chunks())
def test_exact_selection_is_the_top_k_with_ties_to_the_lower_index(case):
    parts, k, room = case
    with Selection(len(parts[0]), k, exact=True, capacity=room) as selection:
        start = 0
        for part in parts:
            assert selection.keep(torch.from_numpy(part), start)
            start += part.shape[1]
        values, indices = selection.result()
    want_values, want_indices = reference(parts, k)
    np.testing.assert_array_equal(indices.numpy(), want_indices)
    np.testing.assert_array_equal(values.numpy(), want_values)


@settings(max_examples=200, deadline=None)
@given(
    chunks(),
    st.sampled_from([0.0, 1e-3, 0.05, 0.3]),
    st.sampled_from([0, 10**6]),
    st.booleans(),
)
def test_bfloat16_selection_keeps_all_that_may_reach_the_kth(case, margin, room, scaled):
    parts, k, _ = case
    products = [torch.from_numpy(p * 0.37 + 0.01).bfloat16() for p in parts]
    n, total = len(parts[0]), sum(p.shape[1] for p in parts)
    margins = np.full(n, margin)
    # int8 anchors: each anchor's products times its own factor
    factors = np.linspace(0.5, 2.0, total).astype(np.float32) if scaled else None
    with Selection(n, k, False, room, margins, ROUNDING, factors) as selection:
        start = 0
        for y in products:
            if not selection.keep(y, start):  # too many near-ties for the least room
                assert room == 0
                return
            start += y.shape[1]
        values, indices = selection.result()
    full = torch.cat(products, 1).float().numpy()
    full = (full if factors is None else full * factors).astype(np.float64)
    kth = np.sort(full, axis=1)[:, [-k]]
    # an entry may reach the k-th if its upper end reaches the k-th's lower end
    reaching = full + ROUNDING * np.abs(full) + margin >= kth - ROUNDING * np.abs(kth)
    for row in range(n):
        held = np.isfinite(values[row].numpy())
        got = indices[row].numpy()[held]
        assert (np.diff(got) > 0).all()  # index order, each once
        np.testing.assert_array_equal(values[row].numpy()[held], full[row, got])
        assert set(np.flatnonzero(reaching[row])) <= set(got.tolist())  # none of them lost


def test_bfloat16_selection_prunes_and_gives_up_on_near_ties():
    rng = np.random.default_rng(0)
    y = torch.from_numpy(rng.normal(0, 0.04, (4, 50_000)).astype(np.float32)).bfloat16()
    with Selection(4, 100, False, 1600, np.full(4, 0.002), ROUNDING) as selection:
        assert selection.keep(y, 0)
        values, _ = selection.result()
    assert 100 <= int(torch.isfinite(values).sum(1).max()) < 400
    tied = torch.full((2, 5000), 0.5).bfloat16()  # all equal: none can be ruled out
    with Selection(2, 100, False, 1600, np.full(2, 0.002), ROUNDING) as selection:
        assert not selection.keep(tied, 0)


@pytest.mark.parametrize(
    ("width", "close"),
    [
        (800 * BLOCK, False),  # exactly k blocks: the least of their maxima, valid but low
        (2 * 800 * BLOCK + 5, True),  # 2 k blocks, a ragged end
        (16 * 800 * BLOCK, True),  # 2 k blocks of 8 BLOCK
        (799 * BLOCK + 7, None),  # fewer than k blocks: no floor
    ],
)
@pytest.mark.parametrize("exact", [True, False])
def test_first_floor_is_at_most_the_floor_of_the_kth(width, close, exact):
    rng = np.random.default_rng(width)
    rows = rng.normal(0.0, 0.04, (3, width)).astype(np.float32)
    rows[2] = -np.abs(rows[2])  # negative products
    for row in rows:
        floor = _first_floor(row, None, width - width % BLOCK, 800, exact, 0.003, ROUNDING)
        if close is None:
            assert floor == -np.inf
            continue
        kth = np.sort(row)[-800]
        bound = kth if exact else floor_below(np.float64(kth), 0.003, ROUNDING)
        assert floor <= bound
        if exact:  # entries equal to the k-th pass
            assert (row > floor).sum() >= 800
        if close:  # and it rules entries out
            assert floor > bound - 0.01
