"""Issue 17, item 1: `GET /anchors/{id}` and its thumbnail, from the served version."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from asif.serve.app import create_app
from asif.serve.live_model import LiveModel
from asif.store.table import AnchorTable
from tests.serve.conftest import anchor_batch

LEGACY = Path(__file__).parents[2] / "fixtures" / "legacy" / "lancedb"


def test_an_anchor_is_its_caption_url_source_size_and_shard(client, shape_rows):
    row = shape_rows.slice(4, 1).to_pylist()[0]
    r = client.get(f"/anchors/{row['id']}")
    assert r.status_code == 200
    assert r.json() == {
        "version": 2,
        "anchor_id": row["id"],
        "caption": row["caption"],
        "url": row["url"],
        "width": 96,
        "height": 96,
        "shard": "",
        "thumbnail": True,
    }


def test_the_thumbnail_is_the_stored_image_with_its_type_and_cache_headers(client, shape_rows):
    row = shape_rows.slice(7, 1).to_pylist()[0]
    r = client.get(f"/anchors/{row['id']}/thumbnail")
    assert r.status_code == 200 and r.content == row["thumbnail"]
    assert r.headers["content-type"] == "image/webp"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "max-age" in r.headers["cache-control"]


@pytest.mark.parametrize("anchor_id", ["nope", "x' OR '1'='1", "%00", "é" * 256])
def test_unknown_ids_are_404_naming_the_id_and_version(client, anchor_id):
    for path in (f"/anchors/{anchor_id}", f"/anchors/{anchor_id}/thumbnail"):
        r = client.get(path)
        assert r.status_code == 404, path
        assert "no anchor" in r.json()["detail"] and "version 2" in r.json()["detail"]


def test_an_overlong_id_is_refused_before_any_lookup(client):
    r = client.get("/anchors/" + "a" * 257)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["path", "anchor_id"]


def test_rows_without_a_thumbnail_or_with_bytes_that_are_no_image(shape_table, encoders):
    plain = anchor_batch(encoders, [("red", "circle", 90)], thumbnails=False)
    bad = anchor_batch(encoders, [("blue", "circle", 91)])
    bad = bad.set_column(bad.schema.get_field_index("thumbnail"), "thumbnail",
                         [[b"<html><script>alert(1)</script></html>"]])  # fmt: skip
    shape_table.upsert(plain)
    shape_table.upsert(bad)
    live = LiveModel(shape_table.uri, image_encoder=encoders[0], text_encoder=encoders[1], k=10)
    with TestClient(create_app(live, watch_interval=None)) as c:
        for anchor_id in (plain["id"][0].as_py(), bad["id"][0].as_py()):
            assert c.get(f"/anchors/{anchor_id}").json()["thumbnail"] is False
            r = c.get(f"/anchors/{anchor_id}/thumbnail")
            assert r.status_code == 404 and "has no thumbnail" in r.json()["detail"]


def test_the_anchor_is_read_from_the_served_version(shape_table, encoders, shape_rows):
    shape_table.tag("prod")
    gone = shape_rows["id"][0].as_py()
    shape_table.remove([gone])
    pinned = LiveModel(shape_table.uri, version="prod", image_encoder=encoders[0])
    latest = LiveModel(shape_table.uri, image_encoder=encoders[0])
    with TestClient(create_app(pinned)) as old, TestClient(create_app(latest)) as new:
        assert old.get(f"/anchors/{gone}").status_code == 200
        assert new.get(f"/anchors/{gone}").status_code == 404


def test_a_table_made_before_thumbnails_answers_without_them(tmp_path):
    shutil.copytree(LEGACY, tmp_path / "lancedb")
    table = AnchorTable.open(str(tmp_path / "lancedb"))
    anchor_id = table.read(["id"])["id"][0].as_py()
    with TestClient(create_app(LiveModel(table.uri), watch_interval=None)) as c:
        assert c.get("/version").json()["thumbnails"] is False
        r = c.get(f"/anchors/{anchor_id}")
        assert r.status_code == 200 and r.json()["thumbnail"] is False
        assert r.json()["caption"].startswith("caption ")
        r = c.get(f"/anchors/{anchor_id}/thumbnail")
        assert r.status_code == 404 and "keeps no thumbnails" in r.json()["detail"]
