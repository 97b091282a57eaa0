import numpy as np
import pytest

from asif.errors import NonFiniteError, require_finite


def test_require_finite_names_the_rows():
    x = np.ones((6, 4), np.float32)
    x[1, 2], x[3, 0], x[4, 3] = np.nan, np.inf, -np.inf
    with pytest.raises(
        NonFiniteError, match=r"embeddings hold .* in 3 row\(s\), first: \[1, 3, 4\]"
    ):
        require_finite(x, "embeddings")


def test_require_finite_accepts_huge_finite_rows_and_empty_input():
    require_finite(np.full((2, 8), 3e38, np.float32), "embeddings")  # their sums overflow
    require_finite(np.zeros((0, 8), np.float32), "embeddings")
