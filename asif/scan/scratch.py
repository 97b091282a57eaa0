"""Work buffers kept between scans: a scan's products and rows need hundreds of MiB, and
fresh memory costs the kernel a page fault and a zeroed page per 4 KiB touched (0.06 s of
a 0.35 s scan of 100k x 768 anchors). Idle buffers are few and bounded, so memory stays
bounded however many threads scan.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from math import prod

import torch

MAX_IDLE = 2  # byte buffers kept while no scan uses them: one per core scanning at once
ALIGN = 64  # bytes: each tensor carved from a buffer starts on a cache line

_idle: list[torch.Tensor] = []
_lock = threading.Lock()


def _take(nbytes: int) -> torch.Tensor:
    """The smallest idle buffer of at least `nbytes`, else a new one."""
    with _lock:
        fitting = [at for at, b in enumerate(_idle) if b.numel() >= nbytes]
        if fitting:
            return _idle.pop(min(fitting, key=lambda at: _idle[at].numel()))
    return torch.empty(nbytes, dtype=torch.uint8)


def _give(buffer: torch.Tensor) -> None:
    """Keep `buffer` for later scans; past MAX_IDLE, the smallest idle one is dropped."""
    with _lock:
        _idle.append(buffer)
        if len(_idle) > MAX_IDLE:
            _idle.pop(min(range(len(_idle)), key=lambda at: _idle[at].numel()))


@contextmanager
def scratch(*specs: tuple[tuple[int, ...], torch.dtype]) -> Iterator[list[torch.Tensor]]:
    """Uninitialised tensors of these (shape, dtype), valid inside the `with` block only:
    anything kept must be copied out (indexing with tensors copies; slicing does not)."""
    sizes = [prod(shape) * torch.empty(0, dtype=dtype).element_size() for shape, dtype in specs]
    offsets = [0]
    for size in sizes:
        offsets.append(offsets[-1] + -(-size // ALIGN) * ALIGN)
    buffer = _take(max(offsets[-1], 1))
    try:
        yield [
            buffer[at : at + size].view(dtype).view(shape)
            for at, size, (shape, dtype) in zip(offsets, sizes, specs, strict=False)
        ]
    finally:
        _give(buffer)
