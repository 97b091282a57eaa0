"""Which shards of a work folder are fully committed to a table, so a rerun can skip them."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from asif.files import atomic_write_text

LEDGER_NAME = "embedded-shards.ledger"
"""JSON, but not named *.json: img2dataset reads every *.json of the folder as shard stats."""


class ShardLedger:
    """Shards of a work folder fully committed to one table (a JSON file, written atomically).

    One file serves every table built from the folder: shard names are kept per `table_key`.
    """

    def __init__(self, work_dir: str | Path, table_key: str) -> None:
        self.path = Path(work_dir) / LEDGER_NAME
        self.table_key = table_key
        data = json.loads(self.path.read_text()) if self.path.exists() else {}
        self._all: dict[str, list[str]] = data
        self.done: set[str] = set(data.get(table_key, []))

    def mark(self, shards: Iterable[str]) -> None:
        """Record shards as done and save."""
        new = set(shards) - self.done
        if new:
            self.done |= new
            self._save()

    def reset(self) -> None:
        """Forget this table's shards (its table was emptied or recreated)."""
        if self.done:
            self.done = set()
            self._save()

    def _save(self) -> None:
        self._all[self.table_key] = sorted(self.done)
        atomic_write_text(self.path, json.dumps(self._all, indent=1))
