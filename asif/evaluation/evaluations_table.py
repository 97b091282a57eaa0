"""The `evaluations` LanceDB table: one row per evaluated (anchor table version, benchmark,
settings), next to the anchor table in the same database by default.

Columns (`EVALUATIONS_SCHEMA`):

- identity: ``settings_key`` (hash of everything below that defines the measurement),
  ``run_id`` (the Prefect flow run id, or a uuid), ``evaluated_at`` (UTC timestamp), ``study``
  ("main", "anchors", "kp", "strategy"), ``task`` ("zeroshot_classification" or
  "zeroshot_retrieval", as CLIP_benchmark names them)
- model: ``table_uri``, ``table_name``, ``table_version``, ``table_tags`` (tags on that version,
  comma-joined), ``table_rows`` (anchors in the version), ``n_anchors`` (anchors used: a random
  subset of ``subset_seed`` in the "anchors" study), ``image_encoder``, ``text_encoder``,
  ``k``, ``p``, ``strategy`` ("max" or "mean")
- benchmark: ``benchmark`` (registry name), ``benchmark_key`` (exact images), ``split``,
  ``n_images``, ``n_classes``, ``n_templates``, ``n_texts`` (retrieval: captions)
- classification results, named as CLIP_benchmark names them: ``acc1``, ``acc5`` (NaN below
  5 classes), ``mean_per_class_recall``; the unknown-rate curve as parallel lists ``thresholds``,
  ``curve_accuracy``, ``curve_unknown``, ``curve_wrong`` (answer "unknown" when the best score
  is below the threshold; accuracy + unknown + wrong = 1); per class ``class_names``,
  ``class_accuracy``, ``class_count``
- retrieval results (CLIP_benchmark's ``image_retrieval_recall@k``, with ``_at_`` for ``@``):
  ``image_retrieval_recall_at_{1,5,10}`` (captions whose image is in their top k),
  ``text_retrieval_recall_at_{1,5,10}`` (images with a caption in their top k)
- timings: ``embed_seconds`` (benchmark + prompt embeddings, cached or not), ``asif_seconds``
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import lancedb
import pyarrow as pa

from asif.evaluation.metrics import CLASSIFICATION, RECALL_KS
from asif.store.sql import quote

DEFAULT_NAME = "evaluations"
_f64, _i64, _str = pa.float64(), pa.int64(), pa.string()
EVALUATIONS_SCHEMA = pa.schema(
    [
        pa.field("settings_key", _str, nullable=False),
        pa.field("run_id", _str),
        pa.field("evaluated_at", pa.timestamp("us", tz="UTC")),
        pa.field("study", _str),
        pa.field("task", _str),
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
        pa.field("n_texts", _i64),
        pa.field("acc1", _f64),
        pa.field("acc5", _f64),
        pa.field("mean_per_class_recall", _f64),
        pa.field("thresholds", pa.list_(_f64)),
        pa.field("curve_accuracy", pa.list_(_f64)),
        pa.field("curve_unknown", pa.list_(_f64)),
        pa.field("curve_wrong", pa.list_(_f64)),
        pa.field("class_names", pa.list_(_str)),
        pa.field("class_accuracy", pa.list_(_f64)),
        pa.field("class_count", pa.list_(_i64)),
        *(
            pa.field(f"{side}_retrieval_recall_at_{k}", _f64)
            for side in ("image", "text")
            for k in RECALL_KS
        ),
        pa.field("embed_seconds", _f64),
        pa.field("asif_seconds", _f64),
    ]
)

Row = dict[str, Any]
RENAMED = {"top1": "acc1", "top5": "acc5"}
"""Columns of tables made before the CLIP_benchmark names, renamed when opened."""


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
        try:
            tbl = db.open_table(name)
        except ValueError:  # not there yet
            tbl = db.create_table(name, schema=EVALUATIONS_SCHEMA, exist_ok=True)
        _upgrade(tbl)
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


def recent_evaluations(
    uri: str,
    table_name: str,
    columns: Sequence[str],
    limit: int,
    *,
    name: str = DEFAULT_NAME,
    storage_options: Mapping[str, str] | None = None,
) -> list[Row]:
    """The newest `limit` main-study rows evaluating anchor table `table_name`, newest first,
    read without creating or upgrading anything (for readers such as the service).

    Empty when the database has no evaluations table; columns a table made by an earlier
    release lacks are None (its old names read under the new ones).
    """
    db = lancedb.connect(uri, storage_options=dict(storage_options or {}) or None)
    try:
        dataset = db.open_table(name).to_lance()
    except ValueError:  # no evaluations yet
        return []
    present = set(dataset.schema.names)
    if not {"table_name", "study", "evaluated_at"} <= present:
        return []
    old_names = {new: old for old, new in RENAMED.items()}
    readable: dict[str, str] = {}
    for column in columns:
        stored = column if column in present else old_names.get(column, "")
        if stored in present:
            readable[column] = stored
    found = dataset.to_table(
        columns=list(dict.fromkeys([*readable.values(), "evaluated_at"])),
        filter=f"table_name = {quote(table_name)} AND study = 'main'",
    )
    rows = found.sort_by([("evaluated_at", "descending")]).slice(0, limit).to_pylist()
    return [{c: row[readable[c]] if c in readable else None for c in columns} for row in rows]


def _upgrade(tbl: Any) -> None:
    """Bring a table made by an earlier release to `EVALUATIONS_SCHEMA`: renamed columns
    renamed, new ones added as nulls (rows of old classification runs get task set)."""
    names = set(tbl.schema.names)
    renames = [{"path": old, "rename": new} for old, new in RENAMED.items() if old in names]
    if renames:
        tbl.alter_columns(*renames)
    missing = [f for f in EVALUATIONS_SCHEMA if f.name not in set(tbl.schema.names)]
    if missing:
        tbl.add_columns(missing)
    if "task" in {f.name for f in missing}:
        tbl.update(where="task IS NULL", values={"task": CLASSIFICATION})
