"""Anchor embeddings held as float32, float16 or int8 (per-row symmetric scale), read in chunks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch

from asif.errors import DimensionMismatchError

Precision = Literal["float32", "float16", "int8"]
PRECISIONS: tuple[Precision, ...] = ("float32", "float16", "int8")


def _as_rows(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2:
        raise DimensionMismatchError(f"{name} must be a 2-D (n, d) array, got shape {x.shape}")
    return x


class AnchorMatrix:
    """N anchor rows of width d, stored compressed and dequantised to float32 chunk by chunk.

    int8 stores `round(x / s * 127)` with one scale `s = max|x|` per row, so a unit-norm row
    loses at most `s / 254` per coordinate.
    """

    def __init__(self, data: np.ndarray, scale: np.ndarray | None = None) -> None:
        data = _as_rows(data, "anchor embeddings")
        if data.dtype == np.int8:
            if scale is None or np.shape(scale) != (data.shape[0],):
                raise ValueError("int8 anchors need one float32 scale per row")
            scale = np.asarray(scale, dtype=np.float32)
        elif data.dtype in (np.float32, np.float16):
            scale = None
        else:
            raise TypeError(f"anchor embeddings must be float32, float16 or int8, not {data.dtype}")
        self.data = data
        self.scale = scale

    @classmethod
    def from_float(cls, x: np.ndarray, precision: Precision = "float32") -> AnchorMatrix:
        """Store float embeddings at `precision`."""
        x = _as_rows(x, "anchor embeddings").astype(np.float32, copy=False)
        if precision == "float32":
            return cls(np.ascontiguousarray(x))
        if precision == "float16":
            return cls(x.astype(np.float16))
        if precision == "int8":
            peak = np.abs(x).max(axis=1) if len(x) else np.zeros(0, np.float32)
            scale = np.where(peak > 0, peak, 1.0).astype(np.float32)
            q = np.rint(x / scale[:, None] * 127.0).astype(np.int8)
            return cls(q, scale)
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")

    @property
    def precision(self) -> Precision:
        return "int8" if self.data.dtype == np.int8 else str(self.data.dtype)  # type: ignore[return-value]

    @property
    def dim(self) -> int:
        return self.data.shape[1]

    @property
    def nbytes(self) -> int:
        return self.data.nbytes + (0 if self.scale is None else self.scale.nbytes)

    def __len__(self) -> int:
        return self.data.shape[0]

    def chunk(self, start: int, stop: int) -> torch.Tensor:
        """Rows `start:stop` as a float32 tensor."""
        rows = torch.from_numpy(np.ascontiguousarray(self.data[start:stop]))
        if self.scale is None:
            return rows.float()
        scale = torch.from_numpy(self.scale[start:stop])
        return rows.float().mul_((scale / 127.0)[:, None])

    def to_float32(self) -> np.ndarray:
        """All rows dequantised."""
        return self.chunk(0, len(self)).numpy()

    def take(self, rows: np.ndarray | Sequence[int]) -> AnchorMatrix:
        """The rows at `rows` (indices or a boolean mask), in a new matrix."""
        rows = np.asarray(rows)
        return AnchorMatrix(self.data[rows], None if self.scale is None else self.scale[rows])

    def append(self, x: np.ndarray) -> AnchorMatrix:
        """A new matrix with float rows `x` added at this matrix's precision."""
        x = _as_rows(x, "new anchor embeddings")
        if x.shape[1] != self.dim:
            raise DimensionMismatchError(
                f"new anchor embeddings have dimension {x.shape[1]}, the anchors have {self.dim}"
            )
        extra = AnchorMatrix.from_float(x, self.precision)
        data = np.concatenate([self.data, extra.data])
        scale = None if self.scale is None else np.concatenate([self.scale, extra.scale])
        return AnchorMatrix(data, scale)
