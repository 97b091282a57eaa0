"""The FastAPI query service over a live ASIF model (`create_app`).

The app is put together here: its settings in `app.state`, the error handlers
(`asif.serve.errors`), the routers (`asif.serve.routers`) and the web page's static files.
Each handler gets the live model's current snapshot once, through `asif.serve.dependencies`,
and answers from it alone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from asif.serve.access import Access
from asif.serve.batching import ImageBatcher
from asif.serve.body_limit import BodyLimit
from asif.serve.dependencies import ServiceSettings
from asif.serve.errors import install_error_handlers
from asif.serve.live_model import LiveModel
from asif.serve.routers import ROUTERS
from asif.serve.routers.page import STATIC
from asif.serve.watcher import TableWatcher


@asynccontextmanager
async def _follow_table(app: FastAPI) -> AsyncIterator[None]:
    """Run the table watcher, if any, while the app serves; stop the image batcher after."""
    watcher: TableWatcher | None = app.state.watcher
    if watcher:
        watcher.start()
    yield
    if watcher:
        watcher.stop()
    app.state.batcher.close()


def create_app(
    live: LiveModel,
    *,
    watch_interval: float | None = 1.0,
    settings: ServiceSettings = ServiceSettings(),
    access: Access = Access(),
) -> FastAPI:
    """The service; unless the model is pinned, it polls the table every `watch_interval` s."""
    app = FastAPI(
        title="ASIF query service",
        description="Zero-shot classification, explanations and retrieval with a training-free "
        "ASIF model whose anchors live in a versioned LanceDB table.",
        lifespan=_follow_table,
    )
    app.state.live = live
    app.state.watcher = None
    if watch_interval and not live.pinned:
        app.state.watcher = TableWatcher(live, watch_interval)
    app.state.settings, app.state.access = settings, access
    app.state.batcher = ImageBatcher(settings.batching)
    install_error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    if access.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(access.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
