"""A memory-mapped cache of the anchor table's embeddings at the served precision.

One folder per (table name, version, precision) holds the model as `.npy` files
(`asif.model.folder` format); loading it maps them instead of reading the table, so a restart at a
cached version is fast and float16/int8 anchors are paged in by the OS as scans need them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from asif.encoders.base import ImageEncoder, TextEncoder
from asif.model import AsifModel, ModelSettings
from asif.model.folder import SETTINGS
from asif.model.from_table import model_from_table
from asif.scan.matrix import Precision
from asif.store.table import AnchorTable


def cache_path(cache_dir: str | Path, view: AnchorTable, precision: Precision) -> Path:
    return Path(cache_dir) / f"{view.name}-v{view.version}-{precision}"


def cached_model(
    view: AnchorTable,
    cache_dir: str | Path,
    precision: Precision,
    settings: ModelSettings,
    *,
    image_encoder: ImageEncoder | None = None,
    text_encoder: TextEncoder | None = None,
) -> AsifModel:
    """The model of `view` memory-mapped from the cache, written there first if missing.

    Caches of other versions of the same table and precision are deleted (mapped files stay
    readable by snapshots still using them).
    """
    path = cache_path(cache_dir, view, precision)
    if not (path / SETTINGS).is_file():
        model_from_table(view, precision=precision, settings=settings).save(path)
    model = AsifModel.load(path, image_encoder=image_encoder, text_encoder=text_encoder)
    model = model.with_settings(k=settings.k, p=settings.p)
    for old in Path(cache_dir).glob(f"{view.name}-v*-{precision}"):
        if old != path and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
    return model
