"""A model that follows its anchor table: immutable snapshots, swapped atomically.

A request takes `live.snapshot` once and uses only that object, so a swap never changes a
model under a running request. A new table version is applied incrementally (only the rows
written since: `asif.store.changes`, `asif.model.updates`) unless most rows changed, then it
is reloaded.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

from asif.encoders.base import ImageEncoder, TextEncoder
from asif.model import AsifModel
from asif.model.from_table import index_model_from_table, model_from_table, table_settings
from asif.model.settings import DEFAULT_K, DEFAULT_P
from asif.model.updates import apply_delta, updatable
from asif.scan.lance_index import SearchSettings
from asif.scan.matrix import Precision
from asif.serve.cache import cached_model
from asif.store.changes import read_delta
from asif.store.table import AnchorTable

log = logging.getLogger(__name__)
FULL_RELOAD_FRACTION = 0.5  # reload from scratch when a delta touches more rows than this


@dataclass(frozen=True)
class Snapshot:
    """One table version's model; never modified after it is made.

    `classifiers` caches zero-shot classifiers (prompt representations) made from this model.
    """

    model: AsifModel
    table: AnchorTable
    ids: pa.Array | None
    how: str
    seconds: float
    loaded_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    classifiers: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def version(self) -> int:
        return self.table.version


class LiveModel:
    """The current model of an anchor table, following new versions unless pinned.

    `version` pins to a version number or tag (the model never moves); `approximate` takes
    each query's top-k from the table's vector indexes instead of scanning anchors in memory;
    `cache_dir` memory-maps full loads from an `.npy` cache of the table version (see
    `asif.serve.cache`) instead of holding a copy in memory.
    """

    def __init__(
        self,
        uri: str,
        name: str = "anchors",
        *,
        version: int | str | None = None,
        storage_options: Mapping[str, str] | None = None,
        precision: Precision = "float32",
        k: int = DEFAULT_K,
        p: float = DEFAULT_P,
        approximate: bool = False,
        search: SearchSettings | None = None,
        image_encoder: ImageEncoder | None = None,
        text_encoder: TextEncoder | None = None,
        cache_dir: str | Path | None = None,
    ) -> None:
        self.uri, self.name = uri, name
        self.storage_options = dict(storage_options) if storage_options else None
        self.cache_dir = cache_dir
        self.tag = version if isinstance(version, str) else None
        self.pinned = version is not None
        self.precision, self.k, self.p = precision, k, p
        self.approximate, self.search = approximate, search or SearchSettings()
        self.image_encoder, self.text_encoder = image_encoder, text_encoder
        self._head = AnchorTable.open(uri, name, storage_options, version=version)
        self._lock = threading.Lock()
        self._snapshot = self._load(
            self._head if self.pinned else self._head.at(self._head.version)
        )

    @property
    def snapshot(self) -> Snapshot:
        """The current snapshot (take it once per request)."""
        return self._snapshot

    def refresh(self) -> bool:
        """Move to the table's latest version if it changed; True if the model was swapped."""
        if self.pinned:
            return False
        with self._lock:
            latest = self._head.refresh()
            current = self._snapshot
            if latest == current.version:
                return False
            view = self._head.at(latest)
            self._snapshot = self._update(current, view)
            s = self._snapshot
            log.info(
                "anchor table %s: version %d -> %d (%s, %d anchors) in %.3f s",
                self.uri, current.version, latest, s.how, len(s.model), s.seconds,
            )  # fmt: skip
            return True

    def _update(self, current: Snapshot, view: AnchorTable) -> Snapshot:
        if self.approximate or current.ids is None:
            return self._load(view)
        start = time.perf_counter()
        delta = read_delta(current.table, view, current.ids)
        if delta is None or delta.size > FULL_RELOAD_FRACTION * max(len(current.model), 1):
            return self._load(view)
        model = apply_delta(current.model, delta)
        return Snapshot(model, view, delta.ids, "incremental", time.perf_counter() - start)

    def _load(self, view: AnchorTable) -> Snapshot:
        start = time.perf_counter()
        settings = table_settings(view).replace(k=self.k, p=self.p)
        image, text = self.image_encoder, self.text_encoder
        ids = None
        if self.approximate:
            model = index_model_from_table(
                view, search=self.search, settings=settings, image_encoder=image, text_encoder=text
            )
        else:
            if self.cache_dir is None:
                exact = model_from_table(
                    view, precision=self.precision, settings=settings,
                    image_encoder=image, text_encoder=text,
                )  # fmt: skip
            else:
                exact = cached_model(
                    view, self.cache_dir, self.precision, settings,
                    image_encoder=image, text_encoder=text,
                )  # fmt: skip
            model = updatable(exact, copy=self.cache_dir is None)
            ids = pa.array(exact.anchors.ids, pa.string())
        return Snapshot(model, view, ids, "full", time.perf_counter() - start)
