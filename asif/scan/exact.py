"""The exact top-k scan: all anchors streamed in chunks, so memory is bounded for any N.

Similarities of a query batch with one chunk of anchors at a time (OpenBLAS products, each
core multiplying a share of the chunk's rows: `blas_in_caller`); each query's k best so far
are kept by `Selection`, which reads each chunk once. Ties go to the lower anchor index.
From BFLOAT16_MIN_ANCHORS anchors, on CPUs that multiply bfloat16 natively,
`asif.scan.bfloat16` gives the same result faster (float16 and int8 anchors then cost no
dequantisation pass). When torch sees a GPU, `asif.scan.device` scans there instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np
import torch

from asif.errors import EmptyInputError, SettingsError, require_positive_int
from asif.scan.base import Modality
from asif.scan.bfloat16 import bfloat16_topk, native_bfloat16
from asif.scan.blas_threads import blas_in_caller
from asif.scan.device import check_device, default_device, device_topk
from asif.scan.matrix import AnchorMatrix, Precision
from asif.scan.parallel import in_parallel
from asif.scan.scratch import scratch
from asif.scan.selection import Selection

DEFAULT_CHUNK = 100_000  # anchors scanned at a time: bounds memory, not results
QUERY_BATCH = 512
# from here on, anchors are scanned in bfloat16 first (measured with benchmarks/relative.py:
# compressed rows are dequantised per chunk on the float32 path, so they gain earlier)
BFLOAT16_MIN_ANCHORS: dict[Precision, int] = {"float32": 40_000, "float16": 25_000, "int8": 25_000}


@contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Run this thread's torch ops single-threaded (OpenMP's thread count is per thread).

    Between OpenBLAS products, torch's spinning OpenMP workers would take cores from
    OpenBLAS's own and the other way round; torch's share of the work here is small.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _products(queries: np.ndarray, rows: np.ndarray, out: np.ndarray) -> None:
    """out = queries @ rows.T, each core multiplying its share of the rows in its own thread
    (inside `blas_in_caller`). numpy's OpenBLAS: its AVX-512 sgemm is ~1.6x torch's MKL one
    on AMD CPUs."""
    in_parallel(lambda a, b: np.matmul(queries, rows[a:b].T, out=out[:, a:b]), len(rows))


def _topk_scan(
    queries: np.ndarray, anchors: AnchorMatrix, k: int, chunk_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact top-k cosine similarities of `queries` against all anchors, chunk by chunk."""
    n, width = len(queries), min(chunk_size, len(anchors))
    dequantised = 0 if anchors.precision == "float32" else width
    with (
        blas_in_caller(),
        scratch(((n * width,), torch.float32), ((dequantised, anchors.dim), torch.float32)) as (
            products,
            rows_buffer,
        ),
        Selection(n, k, exact=True) as selection,
    ):
        for start in range(0, len(anchors), chunk_size):
            stop = min(start + chunk_size, len(anchors))
            sims = products[: n * (stop - start)].view(n, stop - start)
            rows = anchors.chunk(start, stop, rows_buffer[: stop - start] if dequantised else None)
            _products(queries, rows.numpy(), sims.numpy())
            selection.keep(sims, start)
        return selection.result()


def exact_topk(
    queries: np.ndarray,
    anchors: AnchorMatrix,
    k: int,
    chunk_size: int = DEFAULT_CHUNK,
    bfloat16: bool | None = None,
    device: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(similarities, rows) of each unit query's min(k, N) most similar anchors, best first.

    At most `QUERY_BATCH * chunk_size` similarities exist at once, whatever N is. `bfloat16`
    scans with `bfloat16_topk` (same result; by default from BFLOAT16_MIN_ANCHORS anchors of
    the matrix's precision on CPUs that multiply bfloat16 natively). `device`, a torch device
    name other than "cpu", scans there with `device_topk` (by default "cuda" when torch sees
    a GPU, else "cpu").
    """
    if len(anchors) == 0:
        raise EmptyInputError("the anchor set is empty: add anchor pairs first")
    if k < 1 or chunk_size < 1:
        raise SettingsError(
            f"k and chunk_size must be positive, got k={k}, chunk_size={chunk_size}"
        )
    device = device or default_device()
    on_device = torch.device(device).type != "cpu"
    if bfloat16 is None:
        bfloat16 = len(anchors) >= BFLOAT16_MIN_ANCHORS[anchors.precision] and native_bfloat16()
    kk = min(k, len(anchors))
    rows = np.empty((len(queries), kk), dtype=np.int64)
    sims = np.empty((len(queries), kk), dtype=np.float32)
    for start in range(0, len(queries), QUERY_BATCH):
        q = np.ascontiguousarray(queries[start : start + QUERY_BATCH], dtype=np.float32)
        if on_device:
            v, i = device_topk(q, anchors, kk, chunk_size, device)
        else:
            found = bfloat16_topk(q, anchors, kk, chunk_size) if bfloat16 else None
            with _one_torch_thread():
                v, i = found if found is not None else _topk_scan(q, anchors, kk, chunk_size)
        sims[start : start + len(q)] = v.numpy()
        rows[start : start + len(q)] = i.numpy()
    return sims, rows


@dataclass(frozen=True)
class ExactScan:
    """The exact backend: both modalities' anchor matrices in memory, scanned in full (on
    `device`, a torch device name, if given; by default on a GPU when torch sees one).

    It is the backend that can be edited: rows appended, taken or recompressed (each a new
    scan; matrices share row buffers where `AnchorMatrix` allows).
    """

    image: AnchorMatrix
    text: AnchorMatrix
    chunk_size: int = DEFAULT_CHUNK
    bfloat16: bool | None = None
    device: str | None = None

    def __post_init__(self) -> None:
        if len(self.image) != len(self.text):
            raise ValueError(f"{len(self.image)} image but {len(self.text)} text anchor embeddings")
        if self.image.precision != self.text.precision:
            raise ValueError(
                f"image anchors are {self.image.precision}, text anchors {self.text.precision}"
            )
        object.__setattr__(self, "chunk_size", require_positive_int("chunk_size", self.chunk_size))
        if self.device is not None:
            check_device(self.device)

    @property
    def n_rows(self) -> int:
        return len(self.image)

    @property
    def n_live(self) -> int:
        return len(self.image)

    @property
    def precision(self) -> Precision:
        return self.image.precision

    def matrix(self, modality: Modality) -> AnchorMatrix:
        return self.image if modality == "image" else self.text

    def dim(self, modality: Modality) -> int:
        return self.matrix(modality).dim

    def topk(
        self, queries: np.ndarray, modality: Modality, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        matrix = self.matrix(modality)
        return exact_topk(queries, matrix, k, self.chunk_size, self.bfloat16, self.device)

    def append(self, image: np.ndarray, text: np.ndarray) -> ExactScan:
        """This scan with float rows added at its precision (amortised O(new rows))."""
        return replace(self, image=self.image.append(image), text=self.text.append(text))

    def take(self, rows: np.ndarray) -> ExactScan:
        """The scan over the anchors at `rows` (indices or boolean mask)."""
        return replace(self, image=self.image.take(rows), text=self.text.take(rows))

    def delete(self, rows: np.ndarray) -> ExactScan:
        """The scan without the anchors at `rows`, with spare room to append."""
        return replace(self, image=self.image.delete(rows), text=self.text.delete(rows))

    def reserve(self, rows: int) -> ExactScan:
        """A copy with room to append at least `rows` anchors in place."""
        return replace(self, image=self.image.reserve(rows), text=self.text.reserve(rows))

    def compress(self, precision: Precision) -> ExactScan:
        """The same anchors stored at `precision`."""
        image = AnchorMatrix.from_float(self.image.to_float32(), precision)
        return replace(
            self, image=image, text=AnchorMatrix.from_float(self.text.to_float32(), precision)
        )
