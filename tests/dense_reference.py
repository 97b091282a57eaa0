"""Brute-force dense ASIF, written plainly, that the streamed implementation must match."""

import numpy as np


def unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(n > 0, n, 1)


def dense_relative(queries: np.ndarray, anchors: np.ndarray, k: int, p: float) -> np.ndarray:
    """Full (n, N) r(x); ties at the k-th value go to the lower anchor index."""
    sims = unit(queries) @ np.asarray(anchors, dtype=np.float64).T
    out = np.zeros_like(sims)
    for row, s in enumerate(sims):
        keep = np.lexsort((np.arange(len(s)), -s))[:k]
        v = np.clip(s[keep], 0, None) ** p
        norm = np.linalg.norm(v)
        out[row, keep] = v / norm if norm > 0 else v
    return out


def random_unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    return unit(rng.normal(size=(n, d))).astype(np.float32)
