"""The exact top-k scan on a torch device (a CUDA GPU): anchors resident there, streamed
through float32 products chunk by chunk.

Copying anchors to a GPU for every batch would cost more than the products (1M x 768
float32 rows are 3 GB over PCIe), so each row buffer gets one device copy at its stored
precision (`DeviceRows`, filled on first use and grown with appends, as the row norms are),
dequantised chunk by chunk with the CPU's formula. Products are float32 (with TF32 off,
torch's default; a warning says when it is on), so results equal the CPU scan's to float32
rounding. Ties at a chunk's k-th value go to the lower index, as on the CPU, with vectorised
masks rather than a sort of the whole chunk.
"""

from __future__ import annotations

import threading
import warnings
from typing import TYPE_CHECKING

import numpy as np
import torch

from asif.errors import SettingsError
from asif.scan.bfloat16_rows import shared_tensor
from asif.scan.dequantise import to_float32

if TYPE_CHECKING:
    from asif.scan.matrix import AnchorMatrix

UPLOAD_ROWS = 262_144  # rows copied to the device at a time: bounds the staging memory
TF32_ON = (
    "torch.backends.cuda.matmul.allow_tf32 is on: the exact scan's products keep 10 mantissa "
    "bits, so anchors near each query's k-th best may be ranked wrongly; turn it off (torch's "
    "default) for exact results"
)


def default_device() -> str:
    """The device exact scans run on by default: a GPU when torch sees one, else the CPU."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def check_device(name: str) -> None:
    """Refuse a device name torch does not know, or a GPU it cannot see."""
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as e:
        message = f"device must be a torch device name such as 'cuda', got {name!r}"
        raise SettingsError(message) from e
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SettingsError(f"device {name!r} was asked for, but torch sees no CUDA GPU")


class DeviceRows:
    """Rows `[:ready]` of a row buffer (and their int8 scales) on `device`, filled on demand.

    Rows of the buffer never change once written, so rows already copied stay valid for
    every matrix viewing the buffer.
    """

    def __init__(self, matrix: AnchorMatrix, capacity: int, device: torch.device) -> None:
        dtype = shared_tensor(matrix.data[:0]).dtype
        self.rows = torch.empty((capacity, matrix.dim), dtype=dtype, device=device)
        self.scale = None if matrix.scale is None else torch.empty(capacity, device=device)
        self.ready = 0
        self._lock = threading.Lock()

    def fill(self, matrix: AnchorMatrix) -> None:
        """Copy rows `ready:len(matrix)` of `matrix`, a view of the buffer these follow."""
        with self._lock:
            for start in range(self.ready, len(matrix), UPLOAD_ROWS):
                end = min(start + UPLOAD_ROWS, len(matrix))
                self.rows[start:end].copy_(shared_tensor(matrix.data[start:end]))
                if self.scale is not None and matrix.scale is not None:
                    self.scale[start:end].copy_(shared_tensor(matrix.scale[start:end]))
            self.ready = max(self.ready, len(matrix))

    def chunk(self, start: int, stop: int) -> torch.Tensor:
        """Rows `start:stop` as float32 on the device (the formula of `AnchorMatrix.chunk`)."""
        rows = self.rows[start:stop]
        if rows.dtype == torch.float32:
            return rows
        scale = None if self.scale is None else self.scale[start:stop]
        return to_float32(rows, scale, torch.empty(rows.shape, device=rows.device))


def _first_k_by_value(sims: torch.Tensor, k: int, start: int) -> tuple[torch.Tensor, ...]:
    """Each row's k best entries of a chunk, (value descending, index ascending): of the
    entries equal to the k-th value, the lowest-indexed ones fill the places left."""
    kth = torch.topk(sims, k, dim=1, sorted=False).values.amin(1, keepdim=True)
    above = sims > kth
    at_kth = sims == kth
    room = k - above.sum(1, keepdim=True)
    keep = above | (at_kth & (torch.cumsum(at_kth, 1) <= room))
    rows, cols = torch.nonzero(keep, as_tuple=True)  # exactly k a row, in index order
    values = sims[rows, cols].view(len(sims), k)
    return _by_value(values, (cols + start).view(len(sims), k), k)


def _by_value(values: torch.Tensor, indices: torch.Tensor, k: int) -> tuple[torch.Tensor, ...]:
    """The k best of each row whose equal values stand in index order (a stable sort)."""
    order = torch.argsort(values, dim=1, descending=True, stable=True)[:, :k]
    return values.gather(1, order), indices.gather(1, order)


def device_topk(
    queries: np.ndarray, anchors: AnchorMatrix, k: int, chunk_size: int, device: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """(similarities, rows) of each unit query's k most similar anchors (k <= N), best first,
    computed on `device` from its copy of the anchors; returned on the CPU."""
    resident = anchors.on_device(torch.device(device))
    q = torch.from_numpy(np.ascontiguousarray(queries, dtype=np.float32)).to(device)
    best_v = torch.empty((len(q), 0), device=device)
    best_i = torch.empty((len(q), 0), dtype=torch.int64, device=device)
    if torch.backends.cuda.matmul.allow_tf32:
        warnings.warn(TF32_ON, stacklevel=2)
    for start in range(0, len(anchors), chunk_size):
        stop = min(start + chunk_size, len(anchors))
        sims = q @ resident.chunk(start, stop).T
        v, i = _first_k_by_value(sims, min(k, stop - start), start)
        if start > 0:  # the running best first: at equal values, its indices are lower
            v, i = torch.cat([best_v, v], 1), torch.cat([best_i, i], 1)
            v, i = _by_value(v, i, k)
        best_v, best_i = v, i
    return best_v.cpu(), best_i.cpu()
