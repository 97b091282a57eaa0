"""`/health` and `/version`: is the service up, and which model is it serving."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from asif.serve import schemas
from asif.serve.dependencies import Live, Snap, Watcher

router = APIRouter()


@router.get("/health", response_model=schemas.HealthResponse)
def health(snap: Snap, watcher: Watcher) -> dict[str, Any]:
    """Liveness: the served version, and the watcher's last error if updating fails."""
    return {
        "status": "ok",
        "version": snap.version,
        "watcher_error": watcher.last_error if watcher else None,
    }


@router.get("/version", response_model=schemas.VersionResponse)
def version(live: Live, snap: Snap) -> dict[str, Any]:
    """Which table, version and settings the model being served comes from."""
    model = snap.model
    return {
        **schemas.served_by(snap),
        "table": live.uri,
        "name": live.name,
        "tag": live.tag,
        "pinned": live.pinned,
        "image_encoder": model.settings.image_encoder,
        "text_encoder": model.settings.text_encoder,
        "k": model.settings.k,
        "p": model.settings.p,
        "precision": live.precision,
        "approximate": live.approximate,
        "update": snap.how,
        "update_seconds": snap.seconds,
        "loaded_at": snap.loaded_at,
    }
