"""Models over a LanceDB anchor table version: exact (embeddings read into memory) or
index-backed (embeddings stay in the table)."""

from __future__ import annotations

from asif.encoders.base import ImageEncoder, TextEncoder
from asif.errors import EmptyInputError, EncoderMismatchError
from asif.model.anchor_set import AnchorSet
from asif.model.asif_model import AsifModel
from asif.model.settings import ModelSettings
from asif.scan.exact import DEFAULT_CHUNK, ExactScan
from asif.scan.lance_index import IndexScan, SearchSettings
from asif.scan.matrix import AnchorMatrix, Precision
from asif.store.schema import CAPTION, ID, URL
from asif.store.table import AnchorTable


def table_settings(table: AnchorTable) -> ModelSettings:
    """Default settings for the table's encoders (change them with `replace`)."""
    return ModelSettings(table.image_encoder, table.text_encoder)


def model_from_table(
    table: AnchorTable,
    *,
    precision: Precision = "float32",
    chunk_size: int = DEFAULT_CHUNK,
    settings: ModelSettings | None = None,
    image_encoder: ImageEncoder | None = None,
    text_encoder: TextEncoder | None = None,
) -> AsifModel:
    """An exact model over the anchors of `table` at the version it is opened at.

    `settings` default to `table_settings(table)`; their encoder names must be the table's.
    """
    arrays = table.arrays()
    if not len(arrays):
        raise EmptyInputError(
            f"anchor table {table.dataset_uri} has no rows at version {table.version}"
        )
    scan = ExactScan(
        AnchorMatrix.from_float(arrays.image, precision),
        AnchorMatrix.from_float(arrays.text, precision),
        chunk_size,
    )
    anchors = AnchorSet(arrays.ids, arrays.captions, arrays.urls)
    model = AsifModel(anchors, scan, _checked(settings, table))
    model.attach_encoders(image_encoder, text_encoder)
    return model


def index_model_from_table(
    table: AnchorTable,
    *,
    search: SearchSettings | None = None,
    settings: ModelSettings | None = None,
    image_encoder: ImageEncoder | None = None,
    text_encoder: TextEncoder | None = None,
) -> AsifModel:
    """A model whose top-k anchors come from `table`'s vector indexes (`IndexScan`); only
    ids, captions and urls are held in memory. Both embedding columns must be indexed."""
    t = table.read([ID, URL, CAPTION])
    if not t.num_rows:
        raise EmptyInputError(f"anchor table {table.dataset_uri} has no rows")
    ids = t.column(ID).to_pylist()
    anchors = AnchorSet(ids, t.column(CAPTION).to_pylist(), t.column(URL).to_pylist())
    scan = IndexScan(table, ids, search or SearchSettings())
    model = AsifModel(anchors, scan, _checked(settings, table))
    model.attach_encoders(image_encoder, text_encoder)
    return model


def _checked(settings: ModelSettings | None, table: AnchorTable) -> ModelSettings:
    own = table_settings(table)
    if settings is None:
        return own
    if (settings.image_encoder, settings.text_encoder) != (own.image_encoder, own.text_encoder):
        raise EncoderMismatchError(
            f"settings name encoders {settings.image_encoder!r}/{settings.text_encoder!r}; "
            f"anchor table {table.dataset_uri} was embedded with "
            f"{own.image_encoder!r}/{own.text_encoder!r}"
        )
    return settings
