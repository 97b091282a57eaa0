"""Decode any accepted image input into an RGB PIL image, with errors that name the input."""

from __future__ import annotations

import io
import math
import os
import struct
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from asif.encoders.base import ImageInput
from asif.errors import ImageDecodeError, ImageTooLargeError

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".ppm"}
)
"""File suffixes (lower case) taken for images when a folder is read: captioned image folders,
image-folder benchmarks."""

_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    struct.error,
    Image.DecompressionBombError,
)
"""What PIL raises on corrupt, truncated or hostile files."""

_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}
MAX_PIXELS = 50_000_000
"""Pixels an encoded image may decode to (checked from its header, before any decoding).
JPEGs above it are decoded at a reduced scale instead (PIL's draft mode), others refused:
one small file must not allocate gigabytes (a 13000 x 13000 PNG of 0.5 MB is 0.5 GB RGB)."""


def decode_image(
    item: ImageInput, source: str | None = None, max_pixels: int = MAX_PIXELS
) -> Image.Image:
    """Decode `item` fully into an RGB image.

    Grayscale, palette, CMYK and 16-bit images are converted; transparency is composited
    on white; EXIF orientation is applied. Encoded images over `max_pixels` are decoded
    reduced (JPEG) or refused. `source` labels the input in error messages (e.g. "image
    #3"); file paths are always named. Raises `ImageDecodeError`.
    """
    label = _label(item, source)
    try:
        image = _open(item, label, max_pixels)
        image = ImageOps.exif_transpose(image)
        return _to_rgb(image)
    except ImageDecodeError:
        raise
    except _DECODE_ERRORS as exc:
        raise ImageDecodeError(f"cannot decode {label}: {_reason(exc)}") from exc


def _label(item: object, source: str | None) -> str:
    if isinstance(item, str | os.PathLike):
        return f"{source} ({os.fspath(item)})" if source else os.fspath(item)
    return source or "image"


def _bounded(image: Image.Image, label: str, max_pixels: int) -> Image.Image:
    """`image` (opened, not decoded) set to decode to at most `max_pixels`, or refused."""
    width, height = image.size
    if width * height <= max_pixels:
        return image
    if image.format == "JPEG":
        # JPEG decodes at 1/2, 1/4 or 1/8 scale: ask for the power of two that fits
        scale = 2 ** math.ceil(math.log2(math.sqrt(width * height / max_pixels)))
        image.draft("RGB", (math.ceil(width / scale), math.ceil(height / scale)))
        if image.size[0] * image.size[1] <= max_pixels:
            return image
    raise ImageTooLargeError(
        f"cannot decode {label}: {width} x {height} pixels is over the limit of {max_pixels:,}"
    )


def _open(item: object, label: str, max_pixels: int) -> Image.Image:
    """Open and fully load `item` (so truncated data fails here, not later)."""
    if isinstance(item, Image.Image):
        item.load()
        return item
    if isinstance(item, np.ndarray):
        return _from_array(item, label)
    if isinstance(item, bytes | bytearray | memoryview):
        if len(item) == 0:
            raise ImageDecodeError(f"cannot decode {label}: empty payload (0 bytes)")
        with Image.open(io.BytesIO(item)) as image:
            _bounded(image, label, max_pixels).load()
            return image
    if isinstance(item, str | os.PathLike):
        path = Path(item)
        if not path.exists():
            hint = " (URLs are not fetched; download the image first)" if "://" in str(item) else ""
            raise ImageDecodeError(f"cannot decode {label}: file not found{hint}")
        if path.is_file() and path.stat().st_size == 0:
            raise ImageDecodeError(f"cannot decode {label}: empty file (0 bytes)")
        with Image.open(path) as image:
            _bounded(image, label, max_pixels).load()
            return image
    raise ImageDecodeError(
        f"cannot decode {label}: unsupported input type {type(item).__name__}; expected a PIL "
        "image, a file path, encoded bytes or a uint8 array"
    )


def _from_array(array: np.ndarray, label: str) -> Image.Image:
    if array.dtype != np.uint8:
        raise ImageDecodeError(f"cannot decode {label}: array dtype {array.dtype}, expected uint8")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))):
        raise ImageDecodeError(
            f"cannot decode {label}: array shape {array.shape}, expected HxW or HxWx{{1,3,4}}"
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ImageDecodeError(f"cannot decode {label}: array shape {array.shape} has no pixels")
    return Image.fromarray(np.ascontiguousarray(array))


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    if image.mode == "F" or image.mode.startswith("I"):
        image = _to_8bit(image)
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _to_8bit(image: Image.Image) -> Image.Image:
    """Map a 16/32-bit integer or float grayscale image to 8-bit "L" (16-bit and [0, 1] ranges)."""
    values = np.asarray(image, dtype=np.float64)
    peak = float(values.max())
    if image.mode.startswith("I;16") or (image.mode == "I" and peak > 255):
        values = values / 257.0
    elif image.mode == "F" and peak <= 1.0:
        values = values * 255.0
    return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8))


def _reason(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError):
        return "file not found"
    if isinstance(exc, IsADirectoryError):
        return "is a directory, not an image file"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, UnidentifiedImageError):
        return "not a recognised image format (corrupt file or not an image)"
    return str(exc) or type(exc).__name__
