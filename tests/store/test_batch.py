import numpy as np
import pyarrow as pa
import pytest

from asif.errors import DimensionMismatchError, EncoderMismatchError, SchemaMismatchError
from asif.store.batch import build_anchor_batch, drop_duplicate_ids
from asif.store.ids import anchor_id
from asif.store.schema import anchor_columns
from tests.store.rows import DI, DT, make_batch


def test_batch_ids_and_metadata():
    b = make_batch(0, 3)
    assert b.column("id").to_pylist() == [
        anchor_id(f"http://127.0.0.1/img/{i}.jpg", f"a photo of thing {i}") for i in range(3)
    ]
    assert b.schema.metadata[b"asif.image_encoder"] == b"img-enc"
    bare = make_batch(0, 3, encoders=None).schema
    assert bare.equals(anchor_columns(DI, DT), check_metadata=True)


def test_batch_columns_must_have_one_length():
    with pytest.raises(SchemaMismatchError, match="need 2 rows"):
        build_anchor_batch(
            urls=["a", "b"],
            captions=["x", "y"],
            widths=[1],
            heights=[1, 1],
            image_embeddings=np.ones((2, DI)),
            text_embeddings=np.ones((2, DT)),
        )


def test_encoder_and_dimension_mismatch_leave_table_untouched(table):
    table.upsert(make_batch(0, 3))
    version, rows = table.version, len(table)
    with pytest.raises(EncoderMismatchError, match="'clip'.*'img-enc'"):
        table.upsert(make_batch(10, 3, encoders=("clip", "txt-enc")))
    with pytest.raises(EncoderMismatchError, match="'bert'.*'txt-enc'"):
        table.upsert(make_batch(10, 3, encoders=("img-enc", "bert")))
    with pytest.raises(DimensionMismatchError, match="9-d.*8-d"):
        table.upsert(make_batch(10, 3, di=9, encoders=None))
    with pytest.raises(DimensionMismatchError, match=r"metadata says text_embedding is 5-d.*4-d"):
        table.upsert(make_batch(10, 3, dt=5))
    ragged = make_batch(10, 2, encoders=None).set_column(
        7, "text_embedding", pa.array([[0.5] * 4, [0.5] * 3], pa.list_(pa.float32()))
    )
    with pytest.raises(DimensionMismatchError, match=r"length \[3\].*4-d"):
        table.upsert(ragged)
    assert table.version == version and len(table) == rows


def test_conform_casts_losslessly_or_says_why(table):
    b = make_batch(0, 3, encoders=None)
    loose = pa.table(
        {
            "id": b.column("id").to_pylist(),
            "url": b.column("url").to_pylist(),
            "caption": b.column("caption").to_pylist(),
            "width": [10, 20, 30],  # int64
            "height": [1, 2, 3],
            "shard": ["s"] * 3,
            "image_embedding": [
                list(map(float, r)) for r in b.column("image_embedding").to_pylist()
            ],
            "text_embedding": [list(map(float, r)) for r in b.column("text_embedding").to_pylist()],
            "extra": [1, 2, 3],  # not in the schema: dropped
        }
    )
    assert table.upsert(loose).inserted == 3
    assert table.read().schema.equals(table.schema)
    version = table.version
    with pytest.raises(SchemaMismatchError, match="width.*int32"):
        table.upsert(loose.set_column(3, "width", pa.array([1, 2, 2**40])))
    with pytest.raises(SchemaMismatchError, match=r"lacks column\(s\) \['shard'\]"):
        table.upsert(loose.drop_columns(["shard"]))
    with pytest.raises(SchemaMismatchError, match="'id' has 1 null"):
        table.upsert(loose.set_column(0, "id", pa.array([None, "a", "b"], pa.string())))
    dup = pa.concat_tables([b, b.slice(0, 1)])
    with pytest.raises(SchemaMismatchError, match="more than one row"):
        table.upsert(dup)
    assert table.version == version
    assert drop_duplicate_ids(dup).column("id").to_pylist() == b.column("id").to_pylist()


def test_columns_users_added_to_the_table_are_null_in_batches_without_them(table):
    table.upsert(make_batch(0, 3))
    table.lance_table.add_columns({"rating": "cast(NULL as int)"})
    table.refresh()
    table.upsert(make_batch(3, 2))  # no "rating": null, not a KeyError
    assert table.read(["rating"]).column("rating").null_count == 5 and len(table) == 5
