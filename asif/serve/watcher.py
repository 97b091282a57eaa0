"""A background thread that polls the anchor table's version and swaps the live model."""

from __future__ import annotations

import logging
import threading

from asif.errors import SettingsError
from asif.serve.live_model import LiveModel

log = logging.getLogger(__name__)


class TableWatcher:
    """Calls `live.refresh()` every `interval` seconds until stopped; errors keep the old model."""

    def __init__(self, live: LiveModel, interval: float = 1.0) -> None:
        if interval <= 0:
            raise SettingsError(f"watch interval must be positive, got {interval}")
        self.live, self.interval = live, interval
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="asif-table-watcher", daemon=True)

    def start(self) -> TableWatcher:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.live.refresh()
                self.last_error = None
            except Exception as exc:  # keep serving the current snapshot
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("could not update the model from %s", self.live.uri)
