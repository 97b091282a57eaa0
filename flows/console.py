"""Prefect's console output in a process that runs flows as functions (`asif build-anchors`,
`asif demo --pipeline`), whose own progress and report are the output."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def prefect_console_quiet() -> Iterator[None]:
    """No Prefect console lines while the block runs (they would repeat the progress, and a
    failed run's traceback the one-line error); the runs' logs still go to the server."""
    from prefect.logging.handlers import PrefectConsoleHandler

    loggers = [logging.getLogger(), *map(logging.getLogger, ("prefect", "prefect.flow_runs"))]
    handlers = {h for lg in loggers for h in lg.handlers if isinstance(h, PrefectConsoleHandler)}
    levels = {h: h.level for h in handlers}
    for handler in handlers:
        handler.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for handler, level in levels.items():
            handler.setLevel(level)
