"""Anchor embeddings held as float32, float16 or int8 (per-row symmetric scale), read in chunks."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch

from asif.errors import DimensionMismatchError, SettingsError, require_finite
from asif.scan.bfloat16_rows import RowNorms, shared_tensor
from asif.scan.dequantise import to_float32
from asif.scan.device import DeviceRows

Precision = Literal["float32", "float16", "int8"]
PRECISIONS: tuple[Precision, ...] = ("float32", "float16", "int8")
GROWTH = 1.25  # spare rows allocated when a matrix grows or is compacted, as a factor
MIN_SPARE = 1024
_FIRST_USE = threading.Lock()  # concurrent first scans measure norms (or copy rows) once


def _as_rows(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2:
        raise DimensionMismatchError(f"{name} must be a 2-D (n, d) array, got shape {x.shape}")
    return x


class _Storage:
    """A row buffer with spare capacity; the matrices sharing it are prefixes `data[:n]`.

    Only the matrix whose length equals `used` may append in place: rows past an older
    matrix's end are invisible to it, so earlier matrices never see a later append.
    """

    __slots__ = ("data", "devices", "norms", "scale", "used")

    def __init__(self, rows: int, capacity: int, dim: int, dtype: np.dtype, scaled: bool):
        self.data = np.empty((capacity, dim), dtype=dtype)
        self.scale = np.empty(capacity, dtype=np.float32) if scaled else None
        self.norms: RowNorms | None = None
        self.devices: dict[torch.device, DeviceRows] = {}
        self.used = rows

    @classmethod
    def holding(cls, data: np.ndarray, scale: np.ndarray | None) -> _Storage:
        """A full buffer around existing rows: appending needs a new one."""
        storage = cls.__new__(cls)
        storage.data, storage.scale, storage.norms, storage.used = data, scale, None, len(data)
        storage.devices = {}
        return storage

    @classmethod
    def for_rows(cls, rows: int, dim: int, dtype: np.dtype, scaled: bool) -> _Storage:
        return cls(rows, max(int(rows * GROWTH), rows + MIN_SPARE), dim, dtype, scaled)


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
        self._storage = _Storage.holding(data, scale)

    @classmethod
    def _view(cls, storage: _Storage, n: int) -> AnchorMatrix:
        scale = None if storage.scale is None else storage.scale[:n]
        out = cls(storage.data[:n], scale)
        out._storage = storage
        return out

    @classmethod
    def from_float(cls, x: np.ndarray, precision: Precision = "float32") -> AnchorMatrix:
        """Store float embeddings at `precision`."""
        x = _as_rows(x, "anchor embeddings").astype(np.float32, copy=False)
        require_finite(x, "anchor embeddings")
        if precision == "float32":
            return cls(np.ascontiguousarray(x))
        if precision == "float16":
            return cls(x.astype(np.float16))
        if precision == "int8":
            peak = np.abs(x).max(axis=1) if len(x) else np.zeros(0, np.float32)
            scale = np.where(peak > 0, peak, 1.0).astype(np.float32)
            q = np.rint(x / scale[:, None] * 127.0).astype(np.int8)
            return cls(q, scale)
        raise SettingsError(f"precision must be one of {PRECISIONS}, got {precision!r}")

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

    def chunk(self, start: int, stop: int, out: torch.Tensor | None = None) -> torch.Tensor:
        """Rows `start:stop` as a float32 tensor: float32 rows shared, not copied; float16 and
        int8 rows dequantised (into `out`, if given: a reused buffer is much faster than
        fresh memory)."""
        if self.data.dtype == np.float32:
            return shared_tensor(self.data[start:stop])
        out = torch.empty((stop - start, self.dim)) if out is None else out
        scale = None if self.scale is None else shared_tensor(self.scale[start:stop])
        return to_float32(shared_tensor(self.data[start:stop]), scale, out)

    def row_norms(self) -> RowNorms:
        """Each (dequantised) row's norm and the residual norm that bounds the error of its
        bfloat16 rows (`RowNorms`).

        Measured on first use (about 1 s per million 768-d rows) and kept with the row
        buffer, so matrices grown from this one by `append` only measure their new rows.
        """
        storage = self._storage
        with _FIRST_USE:
            if storage.norms is None:
                storage.norms = RowNorms(len(storage.data))
        if storage.norms.ready < len(self):
            storage.norms.fill(self)
        return storage.norms

    def on_device(self, device: torch.device) -> DeviceRows:
        """This matrix's rows on a torch `device`: one copy per row buffer and device, made on
        first use and grown by later appends (rows already there are not copied again)."""
        storage = self._storage
        with _FIRST_USE:
            if device not in storage.devices:
                storage.devices[device] = DeviceRows(self, len(storage.data), device)
        rows = storage.devices[device]
        if rows.ready < len(self):
            rows.fill(self)
        return rows

    def to_float32(self) -> np.ndarray:
        """All rows dequantised."""
        return self.chunk(0, len(self)).numpy()

    def take(self, rows: np.ndarray | Sequence[int]) -> AnchorMatrix:
        """The rows at `rows` (indices or a boolean mask), in a new matrix."""
        rows = np.asarray(rows)
        return AnchorMatrix(self.data[rows], None if self.scale is None else self.scale[rows])

    def append(self, x: np.ndarray) -> AnchorMatrix:
        """A new matrix with float rows `x` added at this matrix's precision.

        Amortised O(len(x)): rows go into spare capacity shared with this matrix when it is
        the newest prefix of its buffer; otherwise the rows are copied into a larger buffer.
        This matrix is never modified.
        """
        x = _as_rows(x, "new anchor embeddings")
        if x.shape[1] != self.dim:
            raise DimensionMismatchError(
                f"new anchor embeddings have dimension {x.shape[1]}, the anchors have {self.dim}"
            )
        extra = AnchorMatrix.from_float(x, self.precision)
        n, m = len(self), len(extra)
        storage = self._storage
        if storage.used != n or len(storage.data) < n + m:
            storage = self.reserve(m)._storage
        storage.data[n : n + m] = extra.data
        if storage.scale is not None:
            storage.scale[n : n + m] = extra.scale
        storage.used = n + m
        return AnchorMatrix._view(storage, n + m)

    def reserve(self, rows: int) -> AnchorMatrix:
        """A copy of this matrix in a buffer with room to append at least `rows` rows in place."""
        return self._copy_runs([(0, len(self))], len(self) + rows)

    def delete(self, rows: np.ndarray | Sequence[int]) -> AnchorMatrix:
        """A new matrix without the rows at `rows` (order kept), with spare room to append."""
        drop = np.unique(np.asarray(rows, dtype=np.int64))
        starts = np.concatenate([[0], drop + 1]).tolist()
        stops = np.concatenate([drop, [len(self)]]).tolist()
        return self._copy_runs(list(zip(starts, stops, strict=True)), len(self) - len(drop))

    def _copy_runs(self, runs: list[tuple[int, int]], rows: int) -> AnchorMatrix:
        """Rows `a:b` of each run, one after the other, in a new buffer sized for `rows` rows.

        Row norms already measured on this matrix are carried over, not remeasured.
        """
        storage = _Storage.for_rows(rows, self.dim, self.data.dtype, self.scale is not None)
        made = self._storage.norms
        if made is not None and made.ready >= len(self):
            storage.norms = RowNorms(len(storage.data))
        at = 0
        for a, b in runs:
            storage.data[at : at + b - a] = self.data[a:b]  # contiguous runs: memcpy speed
            if storage.scale is not None and self.scale is not None:
                storage.scale[at : at + b - a] = self.scale[a:b]
            if storage.norms is not None and made is not None:
                storage.norms.copy_rows(made, at, a, b)
            at += b - a
        if storage.norms is not None:
            storage.norms.ready = at
        storage.used = at
        return AnchorMatrix._view(storage, at)
