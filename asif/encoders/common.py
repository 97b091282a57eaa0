"""Shared machinery of the torch encoders: device choice, input checks, how an encoder runs
(`EncoderSettings`: autocast precision, memory layout, decode threads), batched image encoding."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import torch
from PIL import Image
from torchvision import transforms
from tqdm.auto import tqdm

from asif.encoders.base import ImageInput
from asif.encoders.images import decode_image
from asif.errors import SettingsError

Precision = Literal["auto", "float32", "bfloat16", "float16"]
PRECISIONS: tuple[str, ...] = get_args(Precision)
TO_TENSOR = ("ToTensor", "MaybeToTensor")
"""Names of the transforms that turn a PIL image into a float tensor (torchvision's, timm's)."""


def resolve_device(device: str | None) -> str:
    """`device` as given, else "cuda" when available, else "cpu"."""
    if device:
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def check_batch(items: object, batch_size: int, what: str) -> None:
    """Reject a single item passed where a sequence is expected, and non-positive batch sizes."""
    if isinstance(items, str | bytes | os.PathLike | np.ndarray | Image.Image):
        raise TypeError(f"encode() takes a sequence of {what}, not a single {type(items).__name__}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise SettingsError(f"batch_size must be a positive integer, got {batch_size!r}")


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """This CPU's feature flags (/proc/cpuinfo: x86 `flags`, Arm `Features`); empty elsewhere."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def auto_precision(device: str) -> Precision:
    """What "auto" runs in on `device`: float16 on CUDA and on CPUs with native float16
    (AVX512-FP16, AMX-FP16); bfloat16 on CPUs with native bfloat16 only (AVX512-BF16, AMX-BF16,
    Arm BF16); else float32, since emulated half precision is slower than float32."""
    kind = torch.device(device).type
    if kind == "cuda":
        return "float16"
    flags = cpu_flags() if kind == "cpu" else frozenset()
    if flags & {"avx512_fp16", "amx_fp16"}:
        return "float16"
    if flags & {"avx512_bf16", "amx_bf16", "bf16"}:
        return "bfloat16"
    return "float32"


@dataclass(frozen=True)
class EncoderSettings:
    """How a torch encoder runs, not what it computes: same weights, same name, embeddings
    within cosine 0.999 of float32 (tests/encoders/test_fast_path.py), so rows embedded either
    way share a table.

    `precision`: the autocast dtype ("auto": `auto_precision`; float32 turns autocast off).
    `channels_last`: convolution models in NHWC layout, which oneDNN and cuDNN run faster.
    `decode_threads`: image encoders decode and resize the next batch in this many threads
    while the model runs the current one (0: on the calling thread, in turn).
    """

    precision: Precision = "float32"
    channels_last: bool = False
    decode_threads: int = 0

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise SettingsError(f"precision must be one of {PRECISIONS}, not {self.precision!r}")
        if not isinstance(self.decode_threads, int) or self.decode_threads < 0:
            raise SettingsError(f"decode_threads must be 0 or more, not {self.decode_threads!r}")

    def dtype(self, device: str) -> torch.dtype:
        """The dtype autocast runs in on `device`."""
        precision = auto_precision(device) if self.precision == "auto" else self.precision
        dtype: torch.dtype = getattr(torch, precision)
        return dtype

    def autocast(self, device: str) -> AbstractContextManager[object]:
        """A context running the model in `dtype(device)` (no autocast for float32)."""
        dtype = self.dtype(device)
        if dtype == torch.float32:
            return nullcontext()
        return torch.autocast(torch.device(device).type, dtype=dtype)


EXACT = EncoderSettings()
"""The default: float32, NCHW, decoding in turn: plain eager PyTorch."""
FAST = EncoderSettings(precision="auto", channels_last=True, decode_threads=1)
"""The fast path: half precision where the hardware has it, NHWC, decoding beside the model."""


@dataclass(frozen=True)
class BatchedTransform:
    """A PIL -> normalised tensor transform split where it can run once per batch: `pil` per
    image (in the decode threads), then uint8 -> float, `/ 255` and `(x - mean) / std` on the
    whole batch on the model's device, the same arithmetic as ToTensor + Normalize."""

    pil: Callable[[Image.Image], Image.Image]
    mean: torch.Tensor | None
    std: torch.Tensor | None

    @classmethod
    def split(cls, transform: Callable[[Image.Image], torch.Tensor]) -> BatchedTransform | None:
        """`transform` split, if it is a Compose of PIL steps, a to-tensor step and at most a
        Normalize (torchvision's and timm's eval transforms); else None."""
        steps = list(getattr(transform, "transforms", ()))
        names = [type(step).__name__ for step in steps]
        cut = next((i for i, name in enumerate(names) if name in TO_TENSOR), None)
        if cut is None:
            return None
        rest = steps[cut + 1 :]
        if not rest:
            return cls(transforms.Compose(steps[:cut]), None, None)
        if len(rest) > 1 or not isinstance(rest[0], transforms.Normalize):
            return None
        mean, std = (torch.as_tensor(v, dtype=torch.float32) for v in (rest[0].mean, rest[0].std))
        return cls(transforms.Compose(steps[:cut]), mean.view(1, -1, 1, 1), std.view(1, -1, 1, 1))


class TorchImageEncoder(ABC):
    """An image encoder from a torch model, a PIL->tensor transform and a feature function.

    Encoding is split in two so callers can decode in other threads: `prepare` (decode and
    preprocess one image, no model) and `embed_prepared` (one batch through the model).
    """

    name: str
    dim: int
    device: str
    model: torch.nn.Module
    transform: Callable[[Image.Image], torch.Tensor]
    settings: EncoderSettings = EXACT

    def _place(self, model: torch.nn.Module, device: str | None, settings: EncoderSettings) -> None:
        """Set `model` (in eval mode) on its device and in the layout `settings` ask for."""
        self.settings = settings
        self.device = resolve_device(device)
        model = model.eval().to(self.device)
        self.model = (
            model.to(memory_format=torch.channels_last) if settings.channels_last else model
        )

    @abstractmethod
    def features(self, batch: torch.Tensor) -> torch.Tensor:
        """Raw (n, dim) features of a preprocessed (n, 3, H, W) batch."""

    @cached_property
    def _batched(self) -> BatchedTransform | None:
        return BatchedTransform.split(self.transform)

    def prepare(self, item: ImageInput, source: str | None = None) -> torch.Tensor:
        """One image decoded and preprocessed on the CPU (HxWx3 uint8 when the transform
        batches, else the transform's tensor). Thread-safe; raises `ImageDecodeError`."""
        image = decode_image(item, source=source)
        if self._batched is None:
            return self.transform(image)
        return torch.from_numpy(np.array(self._batched.pil(image), dtype=np.uint8))

    def embed_prepared(self, prepared: Sequence[torch.Tensor]) -> np.ndarray:
        """Unit-norm (n, dim) float32 rows of one batch of `prepare` results."""
        batch = torch.stack(list(prepared)).to(self.device, non_blocking=True)
        with torch.inference_mode():
            if self._batched is not None:  # NHWC uint8: permuted, it is channels_last already
                batch = batch.permute(0, 3, 1, 2).float().div(255)
                if self._batched.mean is not None and self._batched.std is not None:
                    mean, std = self._batched.mean, self._batched.std
                    batch = batch.sub(mean.to(batch.device)).div(std.to(batch.device))
            memory = torch.channels_last if self.settings.channels_last else torch.contiguous_format
            batch = batch.contiguous(memory_format=memory)
            with self.settings.autocast(self.device):
                feats = self.features(batch)
            return torch.nn.functional.normalize(feats.float(), dim=1).cpu().numpy()

    def encode(
        self, images: Sequence[ImageInput], batch_size: int = 32, progress: bool = False
    ) -> np.ndarray:
        """Embed images as an (n, dim) float32 array of unit-norm rows."""
        check_batch(images, batch_size, "images")
        out = np.empty((len(images), self.dim), dtype=np.float32)
        with tqdm(total=len(images), unit="img", desc=self.name, disable=not progress) as bar:
            for start, prepared in self._prepared_chunks(images, batch_size):
                out[start : start + len(prepared)] = self.embed_prepared(prepared)
                bar.update(len(prepared))
        return out

    def _prepared_chunks(
        self, images: Sequence[ImageInput], batch_size: int
    ) -> Iterator[tuple[int, list[torch.Tensor]]]:
        """(start, prepared images) per batch; with decode threads the next batch is prepared
        while the caller embeds this one (one batch ahead: memory stays bounded)."""
        starts = range(0, len(images), batch_size)

        def indices(start: int) -> range:
            return range(start, min(start + batch_size, len(images)))

        if not self.settings.decode_threads:
            for start in starts:
                yield start, [self.prepare(images[i], f"image #{i}") for i in indices(start)]
            return
        pool = ThreadPoolExecutor(self.settings.decode_threads, thread_name_prefix="decode")
        queued: deque[tuple[int, list[Future[torch.Tensor]]]] = deque()
        try:
            for start in starts:
                futures = [
                    pool.submit(self.prepare, images[i], f"image #{i}") for i in indices(start)
                ]
                queued.append((start, futures))
                if len(queued) == 2:
                    first, ready = queued.popleft()
                    yield first, [f.result() for f in ready]
            while queued:
                first, ready = queued.popleft()
                yield first, [f.result() for f in ready]
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
