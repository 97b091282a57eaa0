"""Uploaded image files: read within the upload limit, then decoded."""

from __future__ import annotations

from typing import Annotated

from fastapi import File, HTTPException, UploadFile
from PIL import Image

from asif.encoders.images import decode_image

ImageFile = Annotated[UploadFile, File(description="the image file (JPEG, PNG, ...)")]


def read_image(upload: UploadFile, max_bytes: int) -> Image.Image:
    """The decoded image; 413 over `max_bytes` (read no further), 400 if empty.

    A file that is not a decodable image raises `ImageDecodeError` (415, naming the file).
    """
    data = upload.file.read(max_bytes + 1)
    name = upload.filename or "upload"
    if len(data) > max_bytes:
        raise HTTPException(413, f"image {name!r} is larger than the {max_bytes}-byte upload limit")
    if not data:
        raise HTTPException(400, f"image {name!r} is empty (0 bytes)")
    return decode_image(data, source=f"uploaded file {name!r}")
