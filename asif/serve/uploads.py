"""Uploaded image files: one per request, read within the upload limit, then decoded."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, File, HTTPException, Request, UploadFile
from PIL import Image

from asif.encoders.images import decode_image
from asif.serve.dependencies import ServiceSettings

IMAGE_FIELD = "image"


async def single_image(
    request: Request,
    image: Annotated[UploadFile, File(description="the image file (JPEG, PNG, ...)")],
) -> UploadFile:
    """The request's one `image` part; 422 if there are more (FastAPI would keep the last)."""
    parts = len((await request.form()).getlist(IMAGE_FIELD))  # the form FastAPI parsed
    if parts > 1:
        raise HTTPException(422, f"one image per request; the form has {parts} image parts")
    return image


ImageFile = Annotated[UploadFile, Depends(single_image)]


def read_image(upload: UploadFile, settings: ServiceSettings) -> Image.Image:
    """The decoded image; 413 over the upload limit (read no further), 400 if empty.

    A file that is not a decodable image raises `ImageDecodeError` (415, naming the file);
    one of more than `settings.max_pixels` (JPEGs are decoded reduced instead),
    `ImageTooLargeError` (413).
    """
    max_bytes = settings.max_upload_bytes
    data = upload.file.read(max_bytes + 1)
    name = upload.filename or "upload"
    if len(data) > max_bytes:
        raise HTTPException(413, f"image {name!r} is larger than the {max_bytes}-byte upload limit")
    if not data:
        raise HTTPException(400, f"image {name!r} is empty (0 bytes)")
    return decode_image(data, source=f"uploaded file {name!r}", max_pixels=settings.max_pixels)
