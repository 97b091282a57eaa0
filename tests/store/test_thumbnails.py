"""Issue 17, item 1: anchor thumbnails, made small, typed by their bytes, kept in a nullable
column that tables made before it gain when next opened for writing."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from asif.serve.live_model import LiveModel
from asif.store.table import AnchorTable
from asif.store.thumbnails import make_thumbnail, media_type
from tests.store.rows import ENC, make_batch

LEGACY = Path(__file__).parents[1] / "fixtures" / "legacy" / "lancedb"
LEGACY_ENC = dict(image_encoder="legacy-image", text_encoder="legacy-text", image_dim=8, text_dim=6)


def with_thumbnails(batch: pa.Table) -> pa.Table:
    """The batch with a distinct thumbnail on each row."""
    thumbs = [
        make_thumbnail(Image.new("RGB", (200, 100), (i * 40, 0, 0))) for i in range(len(batch))
    ]
    index = batch.schema.get_field_index("thumbnail")
    return batch.set_column(index, "thumbnail", pa.array(thumbs, pa.binary()))


def opened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


@pytest.mark.parametrize(
    ("size", "expected"), [((300, 150), (128, 64)), ((90, 400), (29, 128)), ((50, 40), (50, 40))]
)
@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "P", "I;16"])
def test_thumbnails_fit_128_px_keep_the_aspect_and_never_grow(size, expected, mode):
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (*size[::-1], 3), dtype=np.uint8)).convert(mode)
    before = image.copy()
    data = make_thumbnail(image)
    thumb = opened(data)
    assert thumb.format == "WEBP" and thumb.size == expected and thumb.mode == "RGB"
    assert media_type(data) == "image/webp"
    assert image.size == size and image.tobytes() == before.tobytes()  # left as it was


def test_a_thumbnail_is_the_image_shrunk():
    gradient = np.linspace(0, 255, 400, dtype=np.uint8)
    image = Image.fromarray(np.stack([np.tile(gradient, (200, 1))] * 3, axis=-1))
    thumb = np.asarray(opened(make_thumbnail(image, side=64)), dtype=float)
    expected = np.asarray(image.resize((64, 32)), dtype=float)
    assert thumb.shape == (32, 64, 3) and np.abs(thumb - expected).mean() < 4


def test_a_side_below_one_pixel_is_refused():
    with pytest.raises(ValueError, match="at least 1 px, not 0"):
        make_thumbnail(Image.new("RGB", (10, 10)), side=0)


@pytest.mark.parametrize("kind", ["JPEG", "PNG", "GIF", "WEBP"])
def test_media_types_are_read_from_the_bytes(kind):
    out = io.BytesIO()
    Image.new("RGB", (4, 4)).save(out, format=kind)
    assert media_type(out.getvalue()) == f"image/{kind.lower()}"


@pytest.mark.parametrize(
    "data", [b"", b"<html><script>alert(1)</script>", b"<svg xmlns='http://www.w3.org/2000/svg'/>",
             b"RIFF\0\0\0\0WAVE", b"\xff\xd8"],
)  # fmt: skip
def test_bytes_a_browser_must_not_render_as_an_image_have_no_type(data):
    assert media_type(data) is None


def test_a_null_thumbnail_has_no_type():
    assert media_type(None) is None


def test_thumbnails_round_trip_and_default_to_null(table):
    batch = with_thumbnails(make_batch(0, 3))
    table.upsert(batch)
    table.upsert(make_batch(3, 2).drop_columns(["thumbnail"]))  # a batch without the column
    stored = dict(zip(*table.read(["id", "thumbnail"]).to_pydict().values(), strict=True))
    expected = dict(zip(batch["id"].to_pylist(), batch["thumbnail"].to_pylist(), strict=True))
    assert stored == {**expected, **dict.fromkeys(make_batch(3, 2)["id"].to_pylist())}
    assert table.has_thumbnails


def test_lookup_finds_one_row_at_the_handle_s_version(table):
    batch = make_batch(0, 3)
    table.upsert(batch)
    first = table.version
    ids = batch["id"].to_pylist()
    table.remove(ids[:1])
    assert table.lookup(ids[0], ["caption"]) is None
    assert table.at(first).lookup(ids[0], ["caption", "width"]) == {
        "caption": "a photo of thing 0", "width": 32,
    }  # fmt: skip
    assert table.lookup("x' OR '1'='1", ["caption"]) is None  # quoted, not SQL


@pytest.fixture
def legacy(tmp_path) -> AnchorTable:
    shutil.copytree(LEGACY, tmp_path / "lancedb")
    return AnchorTable.open(str(tmp_path / "lancedb"))


def test_a_table_made_before_thumbnails_reads_and_takes_writes_without_them(legacy):
    assert not legacy.has_thumbnails and legacy.version == 4
    [row] = legacy.read(["id"]).slice(0, 1).to_pylist()
    assert legacy.lookup(row["id"], ["caption", "shard"]) is not None
    batch = make_batch(100, 2, di=8, dt=6, encoders=("legacy-image", "legacy-text"))
    legacy.upsert(with_thumbnails(batch))  # the thumbnails are dropped, the rows kept
    assert not legacy.has_thumbnails and len(legacy) == 13


def test_opening_one_for_writing_adds_the_column_and_a_following_model_keeps_its_rows(legacy):
    live = LiveModel(legacy.uri)
    before = legacy.arrays()
    upgraded = AnchorTable.create_or_open(legacy.uri, **LEGACY_ENC)
    assert upgraded.has_thumbnails and upgraded.version == 5 and len(upgraded) == 11
    assert upgraded.read(["thumbnail"])["thumbnail"].null_count == 11
    after = upgraded.arrays()
    assert after.ids == before.ids and np.array_equal(after.image, before.image)
    assert not upgraded.at(4).has_thumbnails  # old versions stay as they were
    assert AnchorTable.create_or_open(legacy.uri, **LEGACY_ENC).version == 5  # once only

    assert live.refresh() and live.snapshot.version == 5
    assert sorted(live.snapshot.model.anchors.ids) == sorted(before.ids)
    assert live.snapshot.table.has_thumbnails


def test_new_tables_have_the_column(tmp_path):
    table = AnchorTable.create_or_open(str(tmp_path / "db"), **ENC)
    assert table.has_thumbnails and table.version == 1
