"""The anchor table's columns and schema metadata, and embeddings between numpy and Arrow.

Schema (`anchor_schema`): ``id`` string not null (``anchor_id(url, caption)``), ``url``,
``caption``, ``width`` int32, ``height`` int32, ``shard`` (the source shard), and
``image_embedding`` / ``text_embedding`` as ``fixed_size_list<float32>[d]``, and the optional
``thumbnail`` binary (`asif.store.thumbnails`: null where none was kept; tables made before it
gain the column when next opened for writing). The encoders'
identity lives in the Arrow schema metadata (``asif.image_encoder``, ``asif.text_encoder``,
``asif.image_dim``, ``asif.text_dim``, ``asif.schema_version``); Lance keeps schema metadata
in every manifest, so it survives appends, merges, deletes, compaction and reopening.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from asif.errors import DimensionMismatchError

SCHEMA_VERSION = "1"
META_IMAGE_ENCODER = "asif.image_encoder"
META_TEXT_ENCODER = "asif.text_encoder"
META_IMAGE_DIM = "asif.image_dim"
META_TEXT_DIM = "asif.text_dim"
META_SCHEMA_VERSION = "asif.schema_version"
IDENTITY_KEYS = (META_IMAGE_ENCODER, META_TEXT_ENCODER, META_IMAGE_DIM, META_TEXT_DIM)
"""The metadata every anchor table carries: which encoders, which dimensions."""

ID, URL, CAPTION, WIDTH, HEIGHT, SHARD = "id", "url", "caption", "width", "height", "shard"
IMAGE_EMBEDDING, TEXT_EMBEDDING = "image_embedding", "text_embedding"
THUMBNAIL = "thumbnail"
COLUMNS = (ID, URL, CAPTION, WIDTH, HEIGHT, SHARD, IMAGE_EMBEDDING, TEXT_EMBEDDING)
"""The columns every anchor batch must have."""
OPTIONAL_FIELDS = (pa.field(THUMBNAIL, pa.binary()),)
"""Nullable columns of the schema a batch may lack (null there)."""


def anchor_columns(image_dim: int, text_dim: int) -> pa.Schema:
    """The anchor table's columns, without the encoders' identity (rows of unknown origin)."""
    if image_dim < 1 or text_dim < 1:
        raise DimensionMismatchError(
            f"dimensions must be >= 1, got image {image_dim}, text {text_dim}"
        )
    return pa.schema(
        [
            pa.field(ID, pa.string(), nullable=False),
            pa.field(URL, pa.string()),
            pa.field(CAPTION, pa.string()),
            pa.field(WIDTH, pa.int32()),
            pa.field(HEIGHT, pa.int32()),
            pa.field(SHARD, pa.string()),
            pa.field(IMAGE_EMBEDDING, pa.list_(pa.float32(), image_dim)),
            pa.field(TEXT_EMBEDDING, pa.list_(pa.float32(), text_dim)),
            *OPTIONAL_FIELDS,
        ]
    )


def anchor_schema(
    image_dim: int, text_dim: int, image_encoder: str, text_encoder: str
) -> pa.Schema:
    """The Arrow schema of an anchor table, with the encoders' identity in its metadata."""
    return anchor_columns(image_dim, text_dim).with_metadata(
        {
            META_IMAGE_ENCODER: image_encoder,
            META_TEXT_ENCODER: text_encoder,
            META_IMAGE_DIM: str(image_dim),
            META_TEXT_DIM: str(text_dim),
            META_SCHEMA_VERSION: SCHEMA_VERSION,
        }
    )


def decode_metadata(schema: pa.Schema) -> dict[str, str]:
    """The schema's metadata as text keys and values (Arrow keeps bytes)."""
    return {k.decode(): v.decode() for k, v in (schema.metadata or {}).items()}


def fixed_size_list(x: np.ndarray, name: str) -> pa.FixedSizeListArray:
    """An (n, d) matrix as a float32 fixed-size-list column; `name` labels the error."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise DimensionMismatchError(f"{name} must be a 2-D (n, d) array, got shape {x.shape}")
    return pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), x.shape[1])


def embedding_matrix(column: pa.ChunkedArray, dim: int) -> np.ndarray:
    """(N, dim) float32 view of a fixed_size_list column; zero-copy when it is one chunk."""
    if len(column) == 0:
        return np.empty((0, dim), dtype=np.float32)
    arr = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    values = arr.flatten()  # honours the array's offset; no copy for a fixed-size list
    try:
        flat = values.to_numpy(zero_copy_only=True)
    except pa.ArrowInvalid:
        flat = values.to_numpy(zero_copy_only=False).astype(np.float32)
    return flat.reshape(-1, dim)
