from types import SimpleNamespace
from typing import Annotated

from fastapi import Depends
from fastapi.testclient import TestClient

from asif.serve.app import create_app
from asif.serve.dependencies import ServiceSettings, Settings, Snap, Watcher, current_snapshot


class SwappingLive:
    """A live model whose table moves on every time its snapshot is read."""

    pinned = True

    def __init__(self) -> None:
        self.reads = 0

    @property
    def snapshot(self) -> SimpleNamespace:
        self.reads += 1
        return SimpleNamespace(version=self.reads, classifiers={})


def test_a_request_takes_the_snapshot_once():
    live = SwappingLive()
    app = create_app(live, watch_interval=None)

    def version_of(snap: Annotated[SimpleNamespace, Depends(current_snapshot)]) -> int:
        return snap.version

    @app.get("/twice")
    def twice(snap: Snap, seen: Annotated[int, Depends(version_of)]) -> list[int]:
        return [snap.version, seen]

    with TestClient(app) as c:
        assert c.get("/twice").json() == [1, 1]
        assert c.get("/health").json()["version"] == 2
    assert live.reads == 2


def test_app_settings_reach_handlers():
    app = create_app(
        SwappingLive(), watch_interval=None, settings=ServiceSettings(max_upload_bytes=123)
    )

    @app.get("/settings")
    def settings(settings: Settings, watcher: Watcher) -> list:
        return [settings.max_upload_bytes, settings.classifier_cache, watcher]

    with TestClient(app) as c:
        assert c.get("/settings").json() == [123, ServiceSettings().classifier_cache, None]
