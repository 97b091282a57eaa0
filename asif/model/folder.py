"""A model as a folder: JSON settings, .npy embeddings (memory-mappable), a parquet of anchors.

The encoders are not saved, only their names. The folder is written next to its
destination and renamed into place, so a crash never leaves a half-written model. Folders
written before the re-layout (format version 1) load unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from asif.errors import AsifError
from asif.files import staged_folder
from asif.model.anchor_set import AnchorSet
from asif.model.settings import ModelSettings
from asif.scan.exact import ExactScan
from asif.scan.matrix import AnchorMatrix

FORMAT = "asif-model"
FORMAT_VERSION = 1
SETTINGS = "asif.json"


def write_folder(
    path: str | Path, anchors: AnchorSet, scan: ExactScan, settings: ModelSettings
) -> Path:
    """Write a model to the folder `path`, replacing what was there only once complete."""
    path = Path(path)
    with staged_folder(path) as staging:
        for kind, matrix in (("image", scan.image), ("text", scan.text)):
            np.save(staging / f"{kind}.npy", matrix.data)
            if matrix.scale is not None:
                np.save(staging / f"{kind}_scale.npy", matrix.scale)
        urls = pa.array(anchors.urls, pa.string())
        table = pa.table({"id": anchors.ids, "caption": anchors.captions, "url": urls})
        pq.write_table(table, staging / "anchors.parquet")
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "image_encoder": settings.image_encoder,
            "text_encoder": settings.text_encoder,
            "k": settings.k,
            "p": settings.p,
            "chunk_size": scan.chunk_size,
            "precision": scan.precision,
            "n_anchors": len(anchors),
            "image_dim": scan.image.dim,
            "text_dim": scan.text.dim,
        }
        (staging / SETTINGS).write_text(json.dumps(meta, indent=2))
    return path


def read_settings(path: str | Path) -> dict[str, Any]:
    """The settings file of the model saved at `path`, or a clear error if it is not one."""
    settings_file = Path(path) / SETTINGS
    if not settings_file.is_file():
        raise AsifError(f"{path} is not a saved ASIF model (no {SETTINGS} in it)")
    try:
        meta = json.loads(settings_file.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise AsifError(f"{settings_file} is not valid JSON: {e}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise AsifError(f"{path}: not an {FORMAT!r} folder")
    if meta.get("format_version") != FORMAT_VERSION:
        raise AsifError(f"{path}: unsupported model format version {meta.get('format_version')!r}")
    return meta


def read_folder(path: str | Path, mmap: bool = True) -> tuple[AnchorSet, ExactScan, ModelSettings]:
    """The parts of the model saved at `path`; embeddings memory-mapped unless `mmap` is False."""
    path = Path(path)
    meta = read_settings(path)
    mode: Literal["r"] | None = "r" if mmap else None

    def matrix(kind: str) -> AnchorMatrix:
        scale_file = path / f"{kind}_scale.npy"
        scale = np.load(scale_file) if scale_file.exists() else None
        return AnchorMatrix(np.load(path / f"{kind}.npy", mmap_mode=mode), scale)

    table = pq.read_table(path / "anchors.parquet")
    anchors = AnchorSet(
        table["id"].to_pylist(), table["caption"].to_pylist(), table["url"].to_pylist()
    )
    scan = ExactScan(matrix("image"), matrix("text"), meta["chunk_size"])
    settings = ModelSettings(meta["image_encoder"], meta["text_encoder"], meta["k"], meta["p"])
    return anchors, scan, settings
