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
    assert watcher.last_error == "OSError while reading the anchor table (see log)"
    assert "unreachable" not in watcher.last_error and not watcher.healthy


def test_a_watcher_that_stopped_succeeding_is_not_healthy(monkeypatch):
    watcher = TableWatcher(FlakyLive(), interval=0.01, max_lag=5)
    assert watcher.healthy
    monkeypatch.setattr("asif.serve.watcher.time.monotonic", lambda: watcher.last_success + 6)
    assert not watcher.healthy


def test_interval_must_be_positive():
    with pytest.raises(SettingsError, match="positive"):
        TableWatcher(FlakyLive(), interval=0)
