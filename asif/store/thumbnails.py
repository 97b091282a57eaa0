"""Anchor thumbnails: a small image of each anchor pair, kept in the table's `thumbnail` column.

They let a person see the evidence behind an answer (the anchor pairs `explain` names) without
fetching the source images, many of which are gone from the web. WebP at most
`THUMBNAIL_SIDE` px a side is a few KB a row, small beside the embeddings.
"""

from __future__ import annotations

import io

from PIL import Image

THUMBNAIL_SIDE = 128
THUMBNAIL_QUALITY = 80
_SIGNATURES = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF8", "image/gif"),
)


def make_thumbnail(image: Image.Image, side: int = THUMBNAIL_SIDE) -> bytes:
    """WebP bytes of `image` shrunk to fit `side` x `side` (never enlarged), aspect kept."""
    if side < 1:
        raise ValueError(f"a thumbnail side must be at least 1 px, not {side}")
    thumb = image.convert("RGB")  # a copy: the caller's image is left as it is
    thumb.thumbnail((side, side), Image.Resampling.BICUBIC)
    out = io.BytesIO()
    thumb.save(out, format="WEBP", quality=THUMBNAIL_QUALITY)
    return out.getvalue()


MEDIA_TYPES = ("image/webp", *(kind for _, kind in _SIGNATURES))


def media_type(data: bytes | None) -> str | None:
    """The image type of stored thumbnail bytes from their signature; None for no bytes (a null
    thumbnail) or a format a browser does not show as an image (the service refuses to serve
    them as one)."""
    if data is None:
        return None
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return next((kind for magic, kind in _SIGNATURES if data.startswith(magic)), None)
