import numpy as np
import pyarrow as pa
import pytest

from asif.errors import DimensionMismatchError
from asif.store.schema import (
    IDENTITY_KEYS,
    anchor_columns,
    anchor_schema,
    decode_metadata,
    embedding_matrix,
    fixed_size_list,
)


def test_schema_has_encoder_metadata():
    s = anchor_schema(8, 4, "i", "t")
    assert s.field("id").nullable is False
    assert s.field("image_embedding").type == pa.list_(pa.float32(), 8)
    assert s.field("width").type == pa.int32()
    assert s.metadata[b"asif.image_encoder"] == b"i" and s.metadata[b"asif.text_dim"] == b"4"
    assert set(IDENTITY_KEYS) <= set(decode_metadata(s))
    assert decode_metadata(s)["asif.schema_version"] == "1"


def test_columns_are_the_schema_without_identity():
    columns = anchor_columns(8, 4)
    assert columns.metadata is None
    assert columns.equals(anchor_schema(8, 4, "i", "t"), check_metadata=False)
    with pytest.raises(DimensionMismatchError, match="dimensions must be >= 1"):
        anchor_columns(0, 4)


def test_fixed_size_list_and_back():
    x = np.arange(12, dtype=np.float64).reshape(4, 3)
    column = fixed_size_list(x, "x")
    assert column.type == pa.list_(pa.float32(), 3)
    chunked = pa.chunked_array([column.slice(0, 1), column.slice(1)])  # two chunks, one offset
    np.testing.assert_array_equal(embedding_matrix(chunked, 3), x.astype(np.float32))
    view = embedding_matrix(pa.chunked_array([column]), 3)
    assert view.dtype == np.float32 and not view.flags.owndata  # one chunk: zero-copy
    assert embedding_matrix(pa.chunked_array([], column.type), 3).shape == (0, 3)
    with pytest.raises(DimensionMismatchError, match="x must be a 2-D"):
        fixed_size_list(np.zeros(3), "x")
