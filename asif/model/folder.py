"""Save and load an AsifModel: as a folder (JSON settings, .npy embeddings, a parquet of
anchors), or from a LanceDB anchor table.

The encoders are not saved, only their names; the saved folder is written next to its
destination and renamed into place, so a crash never leaves a half-written model.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from asif.encoders.base import ImageEncoder, TextEncoder
from asif.errors import AsifError, EmptyInputError
from asif.model import AnchorSet, AsifModel
from asif.scan.matrix import AnchorMatrix, Precision
from asif.store.table import AnchorTable

FORMAT = "asif-model"
FORMAT_VERSION = 1
SETTINGS = "asif.json"


def save_model(model: AsifModel, path: str | Path) -> Path:
    """Write `model` to the folder `path`, replacing what was there only once complete."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        a = model.anchors
        for kind, matrix in (("image", a.image), ("text", a.text)):
            np.save(staging / f"{kind}.npy", matrix.data)
            if matrix.scale is not None:
                np.save(staging / f"{kind}_scale.npy", matrix.scale)
        table = pa.table({"id": a.ids, "caption": a.captions, "url": pa.array(a.urls, pa.string())})
        pq.write_table(table, staging / "anchors.parquet")
        settings = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "image_encoder": model.image_encoder_name,
            "text_encoder": model.text_encoder_name,
            "k": model.k,
            "p": model.p,
            "chunk_size": model.chunk_size,
            "precision": a.image.precision,
            "n_anchors": len(a),
            "image_dim": a.image.dim,
            "text_dim": a.text.dim,
        }
        (staging / SETTINGS).write_text(json.dumps(settings, indent=2))
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            path.rename(old)
            staging.rename(path)
            shutil.rmtree(old)
        else:
            staging.rename(path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return path


def read_settings(path: str | Path) -> dict:
    """The settings of the model saved at `path`, or a clear error if it is not one."""
    settings_file = Path(path) / SETTINGS
    if not settings_file.is_file():
        raise AsifError(f"{path} is not a saved ASIF model (no {SETTINGS} in it)")
    settings = json.loads(settings_file.read_text())
    if settings.get("format") != FORMAT or settings.get("format_version") != FORMAT_VERSION:
        raise AsifError(f"{path}: unsupported model format {settings.get('format')!r}")
    return settings


def load_model(
    path: str | Path,
    *,
    image_encoder: ImageEncoder | None = None,
    text_encoder: TextEncoder | None = None,
    mmap: bool = True,
) -> AsifModel:
    """Load a saved model; embeddings are memory-mapped unless `mmap` is False."""
    path = Path(path)
    settings = read_settings(path)
    mode = "r" if mmap else None

    def matrix(kind: str) -> AnchorMatrix:
        scale_file = path / f"{kind}_scale.npy"
        scale = np.load(scale_file) if scale_file.exists() else None
        return AnchorMatrix(np.load(path / f"{kind}.npy", mmap_mode=mode), scale)

    table = pq.read_table(path / "anchors.parquet")
    anchors = AnchorSet(
        table["id"].to_pylist(),
        table["caption"].to_pylist(),
        table["url"].to_pylist(),
        matrix("image"),
        matrix("text"),
    )
    return AsifModel(
        anchors,
        image_encoder_name=settings["image_encoder"],
        text_encoder_name=settings["text_encoder"],
        k=settings["k"],
        p=settings["p"],
        chunk_size=settings["chunk_size"],
        image_encoder=image_encoder,
        text_encoder=text_encoder,
    )


def model_from_table(
    table: AnchorTable,
    *,
    precision: Precision = "float32",
    image_encoder: ImageEncoder | None = None,
    text_encoder: TextEncoder | None = None,
    **settings,
) -> AsifModel:
    """A model over the anchors of a LanceDB anchor table (at the version it is opened at).

    `settings` are AsifModel's k, p and chunk_size.
    """
    arrays = table.arrays()
    if not len(arrays):
        raise EmptyInputError(
            f"anchor table {table.dataset_uri} has no rows at version {table.version}"
        )
    anchors = AnchorSet(
        arrays.ids,
        arrays.captions,
        arrays.urls,
        AnchorMatrix.from_float(arrays.image, precision),
        AnchorMatrix.from_float(arrays.text, precision),
    )
    return AsifModel(
        anchors,
        image_encoder_name=arrays.image_encoder,
        text_encoder_name=arrays.text_encoder,
        image_encoder=image_encoder,
        text_encoder=text_encoder,
        **settings,
    )
