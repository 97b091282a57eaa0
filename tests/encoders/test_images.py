"""decode_image: every accepted input form becomes RGB; every bad input names itself."""

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from asif.encoders.images import decode_image
from asif.errors import ImageDecodeError


def _encoded(image: Image.Image, fmt: str, **save_args: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **save_args)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def chelsea_jpeg(photos: dict[str, np.ndarray]) -> bytes:
    return _encoded(Image.fromarray(photos["chelsea"]), "JPEG", quality=90)


def _assert_rgb(image: Image.Image, size: tuple[int, int]) -> None:
    assert image.mode == "RGB"
    assert image.size == size


# --- accepted inputs -------------------------------------------------------------------------


def test_every_input_form_decodes_to_the_same_rgb_image(
    photos: dict[str, np.ndarray], tmp_path: Path
) -> None:
    chelsea = photos["chelsea"]
    png = tmp_path / "chelsea.png"
    Image.fromarray(chelsea).save(png)
    size = (chelsea.shape[1], chelsea.shape[0])
    forms = [chelsea, Image.fromarray(chelsea), png, str(png), png.read_bytes()]
    for form in forms:
        image = decode_image(form)
        _assert_rgb(image, size)
        np.testing.assert_array_equal(np.asarray(image), chelsea)


def test_jpeg_bytes_and_bytearray(chelsea_jpeg: bytes, photos: dict[str, np.ndarray]) -> None:
    for payload in (chelsea_jpeg, bytearray(chelsea_jpeg)):
        image = decode_image(payload)
        _assert_rgb(image, (451, 300))
        assert np.abs(np.asarray(image, float) - photos["chelsea"]).mean() < 5


@pytest.mark.parametrize("shape", [(32, 48), (32, 48, 1)])
def test_grayscale_arrays_become_gray_rgb(shape: tuple[int, ...]) -> None:
    gray = np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)
    image = np.asarray(decode_image(gray))
    assert image.shape == (32, 48, 3)
    for channel in range(3):
        np.testing.assert_array_equal(image[:, :, channel], gray.reshape(32, 48))


def test_grayscale_photo_file(photos: dict[str, np.ndarray], tmp_path: Path) -> None:
    path = tmp_path / "camera.png"
    Image.fromarray(photos["camera"]).save(path)
    image = decode_image(path)
    _assert_rgb(image, (512, 512))
    np.testing.assert_array_equal(np.asarray(image)[:, :, 1], photos["camera"])


def test_rgba_is_composited_on_white(tmp_path: Path) -> None:
    rgba = np.zeros((10, 20, 4), dtype=np.uint8)
    rgba[:, :10] = (255, 0, 0, 255)  # opaque red left half, fully transparent black right half
    path = tmp_path / "alpha.png"
    Image.fromarray(rgba).save(path)
    for form in (rgba, path):
        image = np.asarray(decode_image(form))
        assert image.shape == (10, 20, 3)
        assert (image[:, :10] == (255, 0, 0)).all()
        assert (image[:, 10:] == 255).all()


def test_palette_gif_with_transparency(tmp_path: Path) -> None:
    palette_image = Image.new("P", (8, 8), 0)
    palette_image.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)
    palette_image.paste(1, (0, 0, 4, 8))
    path = tmp_path / "icon.gif"
    palette_image.save(path, transparency=0)
    image = np.asarray(decode_image(path))
    assert (image[:, :4] == (0, 0, 255)).all()
    assert (image[:, 4:] == 255).all()


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    values = np.array([[0, 257 * 128, 65535]], dtype=np.uint16).repeat(4, axis=0)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    image = np.asarray(decode_image(path))
    np.testing.assert_array_equal(image[0, :, 0], [0, 128, 255])


def test_cmyk_jpeg(photos: dict[str, np.ndarray]) -> None:
    payload = _encoded(Image.fromarray(photos["coffee"]).convert("CMYK"), "JPEG")
    _assert_rgb(decode_image(payload), (600, 400))


def test_exif_orientation_is_applied() -> None:
    upright = Image.new("RGB", (40, 20), (10, 200, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    image = decode_image(_encoded(upright, "JPEG", exif=exif))
    assert image.size == (20, 40)
    assert decode_image(image).size == (20, 40)  # applied once, not again on re-decoding


def test_caller_image_is_not_modified() -> None:
    rgba = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    decode_image(rgba)
    assert rgba.mode == "RGBA"


# --- rejected inputs -------------------------------------------------------------------------


def _decode_error(item: object, source: str | None = None) -> str:
    with pytest.raises(ImageDecodeError) as info:
        decode_image(item, source=source)  # type: ignore[arg-type]
    assert type(info.value) is ImageDecodeError
    return str(info.value)


def test_truncated_jpeg_file(chelsea_jpeg: bytes, tmp_path: Path) -> None:
    path = tmp_path / "cut_short.jpg"
    path.write_bytes(chelsea_jpeg[: len(chelsea_jpeg) // 2])
    message = _decode_error(path)
    assert "cut_short.jpg" in message and "truncated" in message


def test_truncated_lazily_opened_pil_image(chelsea_jpeg: bytes) -> None:
    lazy = Image.open(io.BytesIO(chelsea_jpeg[: len(chelsea_jpeg) // 2]))
    assert "image #7" in _decode_error(lazy, source="image #7")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    message = _decode_error(str(path))
    assert "empty.jpg" in message and "empty" in message


def test_missing_file(tmp_path: Path) -> None:
    message = _decode_error(tmp_path / "nowhere.png")
    assert "nowhere.png" in message and "not found" in message


def test_url_is_not_fetched() -> None:
    assert "URLs are not fetched" in _decode_error("http://127.0.0.1:9/cat.jpg")


def test_text_file_renamed_jpg(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("this is not a picture\n")
    message = _decode_error(path)
    assert "notes.jpg" in message and "not a recognised image" in message


def test_directory(tmp_path: Path) -> None:
    assert str(tmp_path) in _decode_error(tmp_path)


def test_source_label_and_path_both_named(tmp_path: Path) -> None:
    message = _decode_error(tmp_path / "gone.jpg", source="image #3")
    assert "image #3" in message and "gone.jpg" in message


@pytest.mark.parametrize(
    "payload", [b"", b"GIF89a-but-not-really", bytes(range(256)) * 4], ids=["empty", "gif", "noise"]
)
def test_corrupt_bytes_are_named_by_source(payload: bytes) -> None:
    assert "image #4" in _decode_error(payload, source="image #4")


@pytest.mark.parametrize(
    "array",
    [
        np.zeros((8, 8, 3), dtype=np.float32),
        np.zeros((8, 8, 2), dtype=np.uint8),
        np.zeros((2, 8, 8, 3), dtype=np.uint8),
        np.zeros((0, 8, 3), dtype=np.uint8),
    ],
    ids=["float", "two-channels", "4d", "no-pixels"],
)
def test_bad_arrays(array: np.ndarray) -> None:
    assert "array" in _decode_error(array)


def test_unsupported_type() -> None:
    assert "unsupported input type int" in _decode_error(42)


def _blank(size: tuple[int, int], fmt: str, mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size).save(out, fmt)
    return out.getvalue()


def test_images_over_the_pixel_limit_are_refused_before_decoding():
    """A small PNG of 13000 x 13000 pixels would take 0.5 GB (issue 13, item 3)."""
    bomb = _blank((13000, 13000), "PNG", "1")
    assert len(bomb) < 1_000_000
    with pytest.raises(ImageDecodeError, match="13000 x 13000 pixels is over the limit"):
        decode_image(bomb)
    with pytest.raises(ImageDecodeError, match="over the limit of 100"):
        decode_image(_blank((20, 20), "PNG"), max_pixels=100)


def test_large_jpegs_are_decoded_reduced():
    image = decode_image(_blank((400, 300), "JPEG"), max_pixels=20_000)
    assert image.size[0] * image.size[1] <= 20_000 and image.size[0] / image.size[1] == 4 / 3
