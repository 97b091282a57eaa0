"""A background thread that polls the anchor table's version and swaps the live model."""

from __future__ import annotations

import logging
import math
import threading
import time

from asif.errors import SettingsError
from asif.serve.live_model import LiveModel

log = logging.getLogger(__name__)


class TableWatcher:
    """Calls `live.refresh()` every `interval` seconds until stopped; errors keep the old model.

    `last_error` names the failure for clients without its message, which may hold server
    paths or library internals (those go to the log). The watcher is `healthy` while its
    last refresh succeeded and no more than `max_lag` seconds ago.
    """

    def __init__(
        self, live: LiveModel, interval: float = 1.0, max_lag: float | None = None
    ) -> None:
        if not interval > 0 or not math.isfinite(interval):
            raise SettingsError(f"watch interval must be positive, got {interval}")
        self.live, self.interval = live, interval
        self.max_lag = max(10 * interval, 30.0) if max_lag is None else max_lag
        self.last_error: str | None = None
        self.last_success = time.monotonic()
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
                self.last_error, self.last_success = None, time.monotonic()
            except Exception as exc:  # keep serving the current snapshot
                self.last_error = f"{type(exc).__name__} while reading the anchor table (see log)"
                log.exception("could not update the model from %s", self.live.uri)

    @property
    def healthy(self) -> bool:
        """The last refresh succeeded, recently enough that the served version can be trusted."""
        return self.last_error is None and time.monotonic() - self.last_success <= self.max_lag
