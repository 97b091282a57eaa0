import logging

import boto3
import duckdb
import lance
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from asif.errors import DimensionMismatchError, EncoderMismatchError, SchemaMismatchError
from asif.serve.live_model import LiveModel
from asif.store.changes import changed_rows
from asif.store.ids import anchor_id
from asif.store.schema import META_IMAGE_ENCODER, META_SCHEMA_VERSION
from asif.store.table import AnchorTable
from tests.store.rows import DI, DT, ENC, make_batch


def test_create_open_reopen_keeps_metadata(tmp_path):
    uri = str(tmp_path / "db")
    t = AnchorTable.create_or_open(uri, **ENC)
    assert (t.image_encoder, t.text_encoder, t.image_dim, t.text_dim) == (
        "img-enc",
        "txt-enc",
        8,
        4,
    )
    assert len(t) == 0 and t.version == 1
    t.upsert(make_batch(0, 5))
    t.remove([anchor_id("http://127.0.0.1/img/0.jpg", "a photo of thing 0")])
    t.lance_table.optimize()  # compaction rewrites data files; metadata must survive
    again = AnchorTable.create_or_open(uri, **ENC)
    assert again.version == t.version and len(again) == 4
    reopened = AnchorTable.open(uri)
    assert reopened.metadata[META_IMAGE_ENCODER] == "img-enc"
    assert reopened.metadata[META_SCHEMA_VERSION] == "1"
    meta = lance.dataset(reopened.dataset_uri).schema.metadata  # durable in the Lance manifest
    assert meta[b"asif.text_encoder"] == b"txt-enc" and meta[b"asif.image_dim"] == b"8"
    with pytest.raises(
        EncoderMismatchError,
        match="requested model names image encoder 'other', but .* from 'img-enc'",
    ):
        AnchorTable.create_or_open(uri, **{**ENC, "image_encoder": "other"})
    with pytest.raises(DimensionMismatchError, match="text_embedding is 5-d, .* is 4-d"):
        AnchorTable.create_or_open(uri, **{**ENC, "text_dim": 5})


def test_open_rejects_a_table_without_asif_metadata(tmp_path):
    import lancedb

    lancedb.connect(str(tmp_path / "db")).create_table(
        "anchors", schema=pa.schema([("id", pa.string())])
    )
    with pytest.raises(SchemaMismatchError, match="not an ASIF anchor table"):
        AnchorTable.open(str(tmp_path / "db"))


def test_upsert_twice_never_duplicates(table):
    first = table.upsert(make_batch(0, 10))
    assert (first.inserted, first.updated, first.version) == (10, 0, 2)
    again = table.upsert(make_batch(0, 10))
    assert (again.inserted, again.updated, again.version) == (0, 10, 3)
    overlap = table.upsert(make_batch(5, 10))
    assert (overlap.inserted, overlap.updated) == (5, 5)
    ids = table.read(["id"]).column("id").to_pylist()
    assert len(ids) == len(set(ids)) == len(table) == 15
    assert table.upsert(make_batch(0, 0)).version == table.version == 4  # empty batch: no-op


def test_upsert_updates_row_contents(table):
    table.upsert(make_batch(0, 3))
    changed = make_batch(0, 3).set_column(3, "width", pa.array([7, 8, 9], pa.int32()))
    assert table.upsert(changed).updated == 3
    assert sorted(table.read(["width"]).column("width").to_pylist()) == [7, 8, 9]


def test_versions_tags_and_read_only_views(tmp_path, table):
    v_a = table.upsert(make_batch(0, 4)).version
    table.tag("first")
    v_b = table.upsert(make_batch(4, 3)).version
    table.tag("prod", v_a)
    assert table.tags() == {"first": v_a, "prod": v_a}
    table.tag("prod")  # moves the tag to the current version
    assert table.tags()["prod"] == v_b
    infos = table.versions()
    assert [v.version for v in infos] == [1, 2, 3]
    assert [v.num_rows for v in infos] == [0, 4, 7]
    assert infos[-1].tags == ["prod"] and infos[1].tags == ["first"]

    by_tag = AnchorTable.open(table.uri, version="first")
    by_number = table.at(v_a)
    for view in (by_tag, by_number):
        assert view.read_only and view.version == v_a and len(view) == 4
        assert len(view.arrays()) == 4
    with pytest.raises(RuntimeError, match="read-only"):
        by_tag.upsert(make_batch(10, 2))
    with pytest.raises(RuntimeError, match="read-only"):
        by_tag.remove(["x"])
    assert len(table) == 7 and table.version == v_b

    restored = table.restore("first")
    assert restored == v_b + 1 and len(table) == 4


def test_refresh_sees_other_writers(table):
    other = AnchorTable.open(table.uri)
    other.upsert(make_batch(0, 3))
    assert table.refresh() == other.version == 2 and len(table) == 3
    assert table.upsert(make_batch(3, 2)).version == 3  # writes on top of the other's version
    assert len(AnchorTable.open(table.uri)) == 5


def test_remove_by_id(table):
    b1 = make_batch(0, 6)
    v1 = table.upsert(b1).version
    gone = b1.column("id").to_pylist()[:2]
    v2 = table.remove(gone + ["not-an-id", "it's quoted"])
    assert v2 == v1 + 1 and len(table) == 4
    assert set(table.read(["id"]).column("id").to_pylist()).isdisjoint(gone)
    assert table.remove([]) == v2  # nothing to do: no new version


def test_arrays_match_the_rows(table):
    b = make_batch(0, 20)
    table.upsert(b)
    table.upsert(make_batch(20, 5))
    arr = table.arrays()
    assert len(arr) == 25 and arr.version == table.version
    assert arr.image.shape == (25, DI) and arr.image.dtype == np.float32
    assert arr.text.shape == (25, DT) and arr.text.dtype == np.float32
    assert (arr.image_encoder, arr.text_encoder) == ("img-enc", "txt-enc")
    src = {
        i: row
        for i, row in zip(
            b.column("id").to_pylist(), b.column("image_embedding").to_pylist(), strict=True
        )
    }
    for i, row_id in enumerate(arr.ids):
        if row_id in src:
            np.testing.assert_array_equal(arr.image[i], np.asarray(src[row_id], np.float32))
    assert arr.captions[arr.ids.index(b.column("id")[3].as_py())] == "a photo of thing 3"
    assert not arr.image.flags.owndata  # a view over Arrow memory where possible


def test_empty_table_arrays(table):
    arr = table.arrays()
    assert arr.image.shape == (0, DI) and arr.text.shape == (0, DT) and arr.ids == []


def test_other_tools_read_the_table(table):
    table.upsert(make_batch(0, 6))
    ds = lance.dataset(table.dataset_uri)
    assert duckdb.sql("SELECT count(*) FROM ds").fetchall() == [(6,)]
    arrow = ds.to_table(columns=["id", "caption", "width"])
    assert duckdb.sql("SELECT max(width) FROM arrow").fetchall() == [(37,)]
    assert pl.scan_pyarrow_dataset(ds).select("id").collect().height == 6
    assert pl.from_arrow(arrow).shape == (6, 3)
    assert table.lance_table.to_polars().collect().height == 6
    df = arrow.to_pandas()
    assert isinstance(df, pd.DataFrame) and len(df) == 6
    assert len(table.lance_table.to_pandas()) == 6


@pytest.fixture(scope="module")
def s3_options():
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    port = server.get_host_and_port()[1]
    endpoint = f"http://127.0.0.1:{port}"
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    ).create_bucket(Bucket="anchors")
    yield {
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
        "aws_endpoint": endpoint,
        "aws_region": "us-east-1",
        "allow_http": "true",
    }
    server.stop()


def test_s3_create_upsert_reopen_read(s3_options):
    uri = "s3://anchors/db"
    t = AnchorTable.create_or_open(uri, storage_options=s3_options, **ENC)
    assert t.upsert(make_batch(0, 5)).inserted == 5
    t.tag("v1")
    t.upsert(make_batch(3, 4))
    again = AnchorTable.open(uri, storage_options=s3_options)
    assert len(again) == 7 and again.image_encoder == "img-enc" and again.version == t.version
    assert again.arrays().image.shape == (7, DI)
    assert len(AnchorTable.open(uri, storage_options=s3_options, version="v1").read()) == 5
    assert len(changed_rows(again, "v1").added) == 2
    ds = lance.dataset(again.dataset_uri, storage_options=s3_options)
    assert ds.count_rows() == 7 and ds.schema.metadata[b"asif.text_dim"] == b"4"


def test_missing_tables_and_versions_are_a_clear_error(tmp_path):
    from asif.errors import TableNotFoundError

    with pytest.raises(TableNotFoundError, match="no anchor table 'anchors'"):
        AnchorTable.open(str(tmp_path))
    table = AnchorTable.create_or_open(
        str(tmp_path), image_encoder="i", text_encoder="t", image_dim=2, text_dim=2
    )
    for version in (99, "no-such-tag"):
        with pytest.raises(TableNotFoundError, match="no version or tag"):
            table.at(version)


def test_the_id_index_finds_rows_written_before_and_after_it_and_a_model_follows(table):
    """Issue 17: lookups by id through a scalar index, which build-anchors rebuilds."""
    first, later = make_batch(0, 50), make_batch(50, 5)
    table.upsert(first)
    live = LiveModel(table.uri)
    version = table.index_ids()
    assert version == table.version == live.snapshot.version + 1
    assert [i.columns for i in table.lance_table.list_indices()] == [["id"]]
    table.upsert(later)
    for batch in (first, later):
        for row in batch.select(["id", "caption"]).to_pylist()[::7]:
            assert table.lookup(row["id"], ["caption"]) == {"caption": row["caption"]}
    assert table.index_ids() == table.version  # rebuilt, replacing the first
    assert live.refresh() and live.snapshot.how == "incremental" and len(live.snapshot.model) == 55
