"""What each request gets from the app: the live model, its snapshot, the watcher, the limits.

`Snap` is taken once per request (FastAPI caches a dependency within a request), so a
handler answers from one table version even if the watcher swaps in another meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from asif.serve.live_model import LiveModel, Snapshot
from asif.serve.watcher import TableWatcher

DEFAULT_MAX_UPLOAD = 10 * 1024 * 1024
CLASSIFIER_CACHE = 256  # label sets whose prompt representations each snapshot keeps


@dataclass(frozen=True)
class ServiceSettings:
    """The app-wide limits, fixed when the app is made (kept in `app.state.settings`)."""

    max_upload_bytes: int = DEFAULT_MAX_UPLOAD
    classifier_cache: int = CLASSIFIER_CACHE


async def live_model(request: Request) -> LiveModel:
    return request.app.state.live


async def current_snapshot(live: Annotated[LiveModel, Depends(live_model)]) -> Snapshot:
    """The live model's snapshot at the start of the request."""
    return live.snapshot


async def table_watcher(request: Request) -> TableWatcher | None:
    """The watcher following the table; None when pinned or not polling."""
    return request.app.state.watcher


async def service_settings(request: Request) -> ServiceSettings:
    return request.app.state.settings


Live = Annotated[LiveModel, Depends(live_model)]
Snap = Annotated[Snapshot, Depends(current_snapshot)]
Watcher = Annotated[TableWatcher | None, Depends(table_watcher)]
Settings = Annotated[ServiceSettings, Depends(service_settings)]
