"""The `evaluations` LanceDB table: one row per evaluated (anchor table version, benchmark,
settings), next to the anchor table in the same database by default.

Columns (`EVALUATIONS_SCHEMA`):

- identity: ``settings_key`` (hash of everything below that defines the measurement),
  ``run_id`` (the Prefect flow run id, or a uuid), ``evaluated_at`` (UTC timestamp), ``study``
  ("main", "anchors", "kp", "strategy")
- model: ``table_uri``, ``table_name``, ``table_version``, ``table_tags`` (tags on that version,
  comma-joined), ``table_rows`` (anchors in the version), ``n_anchors`` (anchors used: a random
  subset of ``subset_seed`` in the "anchors" study), ``image_encoder``, ``text_encoder``,
  ``k``, ``p``, ``strategy`` ("max" or "mean")
- benchmark: ``benchmark`` (registry name), ``benchmark_key`` (exact images), ``split``,
  ``n_images``, ``n_classes``, ``n_templates``
- results: ``top1``, ``top5``; the unknown-rate curve as parallel lists ``thresholds``,
  ``curve_accuracy``, ``curve_unknown``, ``curve_wrong`` (answer "unknown" when the best score
  is below the threshold; accuracy + unknown + wrong = 1); per class ``class_names``,
  ``class_accuracy``, ``class_count``
- timings: ``embed_seconds`` (benchmark + prompt embeddings, cached or not), ``asif_seconds``
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import lancedb
import pyarrow as pa

from asif.store.sql import quote

DEFAULT_NAME = "evaluations"
_f64, _i64, _str = pa.float64(), pa.int64(), pa.string()
EVALUATIONS_SCHEMA = pa.schema(
    [
        pa.field("settings_key", _str, nullable=False),
        pa.field("run_id", _str),
        pa.field("evaluated_at", pa.timestamp("us", tz="UTC")),
        pa.field("study", _str),
        pa.field("table_uri", _str),
        pa.field("table_name", _str),
        pa.field("table_version", _i64),
        pa.field("table_tags", _str),
        pa.field("table_rows", _i64),
        pa.field("n_anchors", _i64),
        pa.field("subset_seed", _i64),
        pa.field("image_encoder", _str),
        pa.field("text_encoder", _str),
        pa.field("k", _i64),
        pa.field("p", _f64),
        pa.field("strategy", _str),
        pa.field("benchmark", _str),
        pa.field("benchmark_key", _str),
        pa.field("split", _str),
        pa.field("n_images", _i64),
        pa.field("n_classes", _i64),
        pa.field("n_templates", _i64),
        pa.field("top1", _f64),
        pa.field("top5", _f64),
        pa.field("thresholds", pa.list_(_f64)),
        pa.field("curve_accuracy", pa.list_(_f64)),
        pa.field("curve_unknown", pa.list_(_f64)),
        pa.field("curve_wrong", pa.list_(_f64)),
        pa.field("class_names", pa.list_(_str)),
        pa.field("class_accuracy", pa.list_(_f64)),
        pa.field("class_count", pa.list_(_i64)),
        pa.field("embed_seconds", _f64),
        pa.field("asif_seconds", _f64),
    ]
)

Row = dict[str, Any]


class EvaluationsTable:
    """Append-only results table; `find` looks rows up by settings key."""

    def __init__(self, table: Any, uri: str, name: str) -> None:
        self._tbl = table
        self.uri = uri
        self.name = name

    @classmethod
    def open(
        cls,
        uri: str,
        name: str = DEFAULT_NAME,
        storage_options: Mapping[str, str] | None = None,
    ) -> EvaluationsTable:
        """Open the table in the LanceDB database at `uri`, creating it empty if missing."""
        db = lancedb.connect(uri, storage_options=dict(storage_options or {}) or None)
        tbl = db.create_table(name, schema=EVALUATIONS_SCHEMA, exist_ok=True)
        return cls(tbl, uri, name)

    @property
    def dataset_uri(self) -> str:
        """The Lance dataset path, for `lance.dataset`, DuckDB or Polars."""
        return str(self._tbl.uri)

    def __len__(self) -> int:
        self._tbl.checkout_latest()
        return int(self._tbl.count_rows())

    def add(self, rows: Sequence[Row]) -> None:
        """Append rows (dicts with the schema's columns) as one new version."""
        if rows:
            self._tbl.add(pa.Table.from_pylist(list(rows), schema=EVALUATIONS_SCHEMA))

    def read(self, where: str | None = None) -> pa.Table:
        """All rows (or those matching a Lance SQL filter), latest version."""
        self._tbl.checkout_latest()
        return self._tbl.to_lance().to_table(filter=where)

    def find(self, settings_keys: Sequence[str]) -> dict[str, Row]:
        """The newest row of each of these settings keys that has one."""
        if not settings_keys:
            return {}
        keys = ", ".join(quote(k) for k in dict.fromkeys(settings_keys))
        found: dict[str, Row] = {}
        rows = self.read(f"settings_key IN ({keys})").to_pylist()
        for row in sorted(rows, key=lambda r: r["evaluated_at"]):
            found[row["settings_key"]] = row
        return found
