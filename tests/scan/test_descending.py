import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from asif.scan.descending import best_first, sort_descending

# few distinct values (ties), both zeros, infinities, subnormals, and values of every sign
VALUES = st.sampled_from([0.0, -0.0, 1.0, -1.0, 0.5, np.inf, -np.inf, 1e-45, -3e38, 2.0**-126])
ROWS = arrays(np.float32, st.tuples(st.integers(0, 4), st.integers(0, 300)), elements=VALUES)


def reference(values: np.ndarray) -> np.ndarray:
    """Positions by value descending, ties (-0.0 == 0.0 included) by position."""
    return np.lexsort((np.arange(values.shape[-1]), -values.astype(np.float64)))


@settings(deadline=None)  # the first example compiles the loops
@given(st.one_of(ROWS, arrays(np.float32, st.tuples(st.integers(1, 3), st.integers(1, 2000)))))
def test_sorts_descending_and_stably(values):
    values = np.where(np.isnan(values), 0, values).astype(np.float32)
    for row in values:
        order = reference(row)
        got, indices = row.copy(), np.arange(len(row)) * 7
        sort_descending(got, indices)
        np.testing.assert_array_equal(indices, order * 7)
        assert got.tobytes() == row[order].tobytes()  # -0.0 stays -0.0


@settings(deadline=None)
@given(ROWS, st.integers(0, 300))
def test_best_first_is_each_rows_k_largest(values, k):
    k = min(k, values.shape[1])
    indices = np.arange(values.size).reshape(values.shape)
    got_values, got_indices = best_first(torch.from_numpy(values), torch.from_numpy(indices), k)
    for row, got in zip(range(len(values)), got_indices.numpy(), strict=True):
        order = reference(values[row])[:k]
        np.testing.assert_array_equal(got, indices[row, order])
        np.testing.assert_array_equal(got_values[row].numpy(), values[row, order])
