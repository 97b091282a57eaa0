import io

import pytest
from fastapi import HTTPException, UploadFile

from asif.errors import ImageDecodeError, ImageTooLargeError
from asif.serve.dependencies import ServiceSettings
from asif.serve.uploads import read_image
from tests.serve.conftest import png, shape_image


class CountingReads(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.asked: list[int] = []

    def read(self, size: int | None = -1) -> bytes:
        self.asked.append(size)
        return super().read(size)


def upload(data: bytes, name: str | None = "x.png") -> UploadFile:
    return UploadFile(CountingReads(data), filename=name)


def test_reads_and_decodes_an_image():
    image = read_image(
        upload(png(shape_image("red", "circle"))), ServiceSettings(max_upload_bytes=100_000)
    )
    assert image.size == (96, 96)


def test_over_the_limit_is_413_without_reading_it_all():
    file = upload(b"\x89PNG" + b"0" * 5_000, "big.png")
    with pytest.raises(HTTPException) as e:
        read_image(file, ServiceSettings(max_upload_bytes=1_000))
    assert e.value.status_code == 413 and "big.png" in e.value.detail
    assert file.file.asked == [1_001]


def test_empty_is_400_and_undecodable_is_named():
    with pytest.raises(HTTPException) as e:
        read_image(upload(b"", None), ServiceSettings(max_upload_bytes=1_000))
    assert e.value.status_code == 400 and "'upload'" in e.value.detail
    with pytest.raises(ImageDecodeError, match="notes.txt"):
        read_image(upload(b"not an image", "notes.txt"), ServiceSettings(max_upload_bytes=1_000))


def test_over_the_pixel_limit_is_refused_from_the_header():
    settings = ServiceSettings(max_pixels=96 * 95)
    with pytest.raises(ImageTooLargeError, match="96 x 96 pixels is over the limit of 9,120"):
        read_image(upload(png(shape_image("red", "circle")), "wide.png"), settings)
