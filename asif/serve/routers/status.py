"""`/health` and `/version`: is the service up, and which model is it serving."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from asif.serve import schemas
from asif.serve.access import Authorized
from asif.serve.dependencies import Live, Snap, Watcher
from asif.serve.live_model import Snapshot
from asif.serve.watcher import TableWatcher
from asif.store.location import public_uri

router = APIRouter()


def _health(snap: Snapshot, watcher: TableWatcher | None) -> dict[str, Any]:
    degraded = watcher is not None and not watcher.healthy
    return {
        "status": "degraded" if degraded else "ok",
        "version": snap.version,
        "watcher_error": watcher.last_error if watcher else None,
    }


@router.get("/health", response_model=schemas.HealthResponse)
def health(snap: Snap, watcher: Watcher) -> dict[str, Any]:
    """Liveness (always 200 while the process answers): the served version, and "degraded"
    with the watcher's last error when the model may lag the table."""
    return _health(snap, watcher)


@router.get(
    "/ready",
    dependencies=[Authorized],
    response_model=schemas.HealthResponse,
    responses={503: {"model": schemas.HealthResponse}},
)
def ready(snap: Snap, watcher: Watcher) -> JSONResponse:
    """Readiness: as /health, but 503 while degraded, so a balancer stops sending traffic."""
    answer = _health(snap, watcher)
    return JSONResponse(answer, status_code=503 if answer["status"] == "degraded" else 200)


@router.get("/version", dependencies=[Authorized], response_model=schemas.VersionResponse)
def version(live: Live, snap: Snap) -> dict[str, Any]:
    """Which table, version and settings the model being served comes from."""
    model = snap.model
    return {
        **schemas.served_by(snap),
        "table": public_uri(live.uri),
        "name": live.name,
        "tag": live.tag,
        "tags": sorted(t for t, v in snap.table.tags().items() if v == snap.version),
        "pinned": live.pinned,
        "image_encoder": model.settings.image_encoder,
        "text_encoder": model.settings.text_encoder,
        "k": model.settings.k,
        "p": model.settings.p,
        "precision": live.precision,
        "approximate": live.approximate,
        "thumbnails": snap.table.has_thumbnails,
        "update": snap.how,
        "update_seconds": snap.seconds,
        "loaded_at": snap.loaded_at,
    }
