import threading

import pytest

from asif.errors import SettingsError
from asif.serve.watcher import TableWatcher


class FlakyLive:
    """Fails its first refresh, then succeeds."""

    uri = "memory://anchors"

    def __init__(self) -> None:
        self.calls = 0
        self.recovered = threading.Event()

    def refresh(self) -> bool:
        self.calls += 1
        if self.calls == 1:
            raise OSError("table unreachable")
        self.recovered.set()
        return False


def test_refresh_errors_are_kept_until_the_next_success():
    live = FlakyLive()
    watcher = TableWatcher(live, interval=0.01)
    watcher.start()
    assert live.recovered.wait(10)
    watcher.stop()
    assert live.calls >= 2 and watcher.last_error is None


def test_error_is_reported(monkeypatch):
    live = FlakyLive()
    watcher = TableWatcher(live, interval=0.01)
    waits = iter([False, True])  # one round, then stop
    monkeypatch.setattr(watcher._stop, "wait", lambda _: next(waits))
    watcher._run()
    assert watcher.last_error == "OSError: table unreachable"


def test_interval_must_be_positive():
    with pytest.raises(SettingsError, match="positive"):
        TableWatcher(FlakyLive(), interval=0)
