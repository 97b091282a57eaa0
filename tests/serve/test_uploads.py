import io

import pytest
from fastapi import HTTPException, UploadFile

from asif.errors import ImageDecodeError
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
    image = read_image(upload(png(shape_image("red", "circle"))), max_bytes=100_000)
    assert image.size == (96, 96)


def test_over_the_limit_is_413_without_reading_it_all():
    file = upload(b"\x89PNG" + b"0" * 5_000, "big.png")
    with pytest.raises(HTTPException) as e:
        read_image(file, max_bytes=1_000)
    assert e.value.status_code == 413 and "big.png" in e.value.detail
    assert file.file.asked == [1_001]


def test_empty_is_400_and_undecodable_is_named():
    with pytest.raises(HTTPException) as e:
        read_image(upload(b"", None), max_bytes=1_000)
    assert e.value.status_code == 400 and "'upload'" in e.value.detail
    with pytest.raises(ImageDecodeError, match="notes.txt"):
        read_image(upload(b"not an image", "notes.txt"), max_bytes=1_000)
