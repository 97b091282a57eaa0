"""Validate a batch of anchor rows with Great Expectations 1.x before it reaches the anchor table.

`validate_anchor_batch` turns the Arrow batch into a pandas frame of per-row scalars (the id,
the stripped caption, width, height, and for each embedding its length, its count of NaN/inf
values and its L2 norm) and lets one GX suite judge them; the suite, context and validation
definition are built once per process (GX setup is slow; one run over 1,000 rows takes about
0.1 s here). Dimensions and the norm tolerance are GX suite parameters, so one suite serves
every table.

A zero-row batch is valid: every expectation holds on no rows. `asif.pipeline.commit` is the
gate that uses this report to commit a batch or quarantine it.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from asif.errors import SchemaMismatchError
from asif.store.schema import CAPTION, HEIGHT, ID, IMAGE_EMBEDDING, TEXT_EMBEDDING, WIDTH

MAX_SIDE = 65535
SAMPLE_SIZE = 5

# The columns of the frame GX judges, and what each one means to a person reading a report.
DESCRIPTIONS = {
    "id": "id",
    "caption_stripped": "caption (stripped of whitespace)",
    "width": "image width",
    "height": "image height",
    "image_dim": "image_embedding length",
    "text_dim": "text_embedding length",
    "image_nonfinite": "NaN/inf values in image_embedding",
    "text_nonfinite": "NaN/inf values in text_embedding",
    "image_norm": "image_embedding L2 norm",
    "text_norm": "text_embedding L2 norm",
}


def _embedding_columns(col: pa.ChunkedArray | None, n: int) -> tuple[pd.Series, ...]:
    """Per-row (length, count of non-finite values, L2 norm) of a list-of-float column.

    Rows with a null embedding get a null length (caught by not-null) and a null norm; rows
    with NaN/inf get a null norm so only the non-finite check reports them.
    """
    if col is None:
        empty = pd.Series([pd.NA] * n, dtype="Int64")
        return empty, empty.copy(), pd.Series([np.nan] * n, dtype="float64")
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if pa.types.is_fixed_size_list(arr.type):
        arr = arr.cast(pa.list_(arr.type.value_type))
    lengths_arrow = pc.list_value_length(arr)
    is_null = lengths_arrow.is_null().to_numpy(zero_copy_only=False)
    lengths = lengths_arrow.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    values = arr.flatten()
    if not pa.types.is_floating(values.type):
        values = values.cast(pa.float64())
    values = values.fill_null(np.nan).to_numpy(zero_copy_only=False)
    if n and lengths[0] > 0 and not is_null.any() and (lengths == lengths[0]).all():
        rows = values.reshape(n, lengths[0])  # the usual case: one width, no null rows
        finite = np.isfinite(rows)
        clean = np.where(finite, rows, 0.0)
        nonfinite = (~finite).sum(axis=1)
        norm = np.sqrt(np.einsum("ij,ij->i", clean, clean, dtype=np.float64))
    else:  # ragged or with null rows: per-row sums from prefix sums
        finite = np.isfinite(values)
        bounds = np.concatenate([[0], np.cumsum(lengths)])
        sq = np.concatenate(
            [[0.0], np.cumsum(np.where(finite, values, 0.0).astype(np.float64) ** 2)]
        )
        bad = np.concatenate([[0], np.cumsum(~finite)])
        norm = np.sqrt(sq[bounds[1:]] - sq[bounds[:-1]])
        nonfinite = bad[bounds[1:]] - bad[bounds[:-1]]
    norm[(nonfinite > 0) | is_null] = np.nan
    dim = pd.Series(lengths, dtype="Int64").mask(is_null)
    return dim, pd.Series(nonfinite, dtype="Int64"), pd.Series(norm, dtype="float64")


def _int_column(col: pa.ChunkedArray | None, n: int) -> pd.Series:
    if col is None:
        return pd.Series([pd.NA] * n, dtype="Int64")
    try:
        return pd.Series(pc.cast(col, pa.int64()).to_pylist(), dtype="Int64")
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, TypeError):
        return pd.Series(col.to_pylist(), dtype="object")  # GX reports the type problem


def anchor_batch_frame(batch: pa.Table) -> pd.DataFrame:
    """The per-row scalar frame that GX validates (one row per batch row, same order)."""
    n = batch.num_rows
    names = set(batch.column_names)
    frame: dict[str, pd.Series] = {}
    if ID in names:
        frame["id"] = pd.Series(batch.column(ID).cast(pa.string()).to_pylist(), dtype="object")
    if CAPTION in names:
        captions = batch.column(CAPTION).cast(pa.string()).to_pylist()
        frame["caption_stripped"] = pd.Series(
            [c.strip() if c is not None else None for c in captions], dtype="object"
        )
    frame["width"] = _int_column(batch.column(WIDTH) if WIDTH in names else None, n)
    frame["height"] = _int_column(batch.column(HEIGHT) if HEIGHT in names else None, n)
    for prefix, name in (("image", IMAGE_EMBEDDING), ("text", TEXT_EMBEDDING)):
        col = batch.column(name) if name in names else None
        if col is not None and not (
            pa.types.is_list(col.type)
            or pa.types.is_large_list(col.type)
            or pa.types.is_fixed_size_list(col.type)
        ):
            raise SchemaMismatchError(f"batch column {name!r} is {col.type}, not a list of floats")
        dim, nonfinite, norm = _embedding_columns(col, n)
        frame[f"{prefix}_dim"] = dim
        frame[f"{prefix}_nonfinite"] = nonfinite
        frame[f"{prefix}_norm"] = norm
    return pd.DataFrame(frame, index=pd.RangeIndex(n))


class _Gx:
    """The process's GX context, suite and validation definition, built on first use."""

    _lock = threading.Lock()
    _instance: _Gx | None = None

    def __init__(self) -> None:
        import great_expectations as gx
        import great_expectations.expectations as gxe
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        source = self.context.data_sources.add_pandas(f"asif-{uuid.uuid4().hex[:8]}")
        asset = source.add_dataframe_asset("anchor_batch")
        batch_definition = asset.add_batch_definition_whole_dataframe("whole_batch")
        suite = self.context.suites.add(gx.ExpectationSuite(name="asif_anchor_batch"))

        def param(name: str) -> dict[str, str]:
            return {"$PARAMETER": name}

        expectations = [
            gxe.ExpectColumnToExist(column="id"),
            gxe.ExpectColumnValuesToNotBeNull(column="id"),
            gxe.ExpectColumnValuesToBeUnique(column="id"),
            gxe.ExpectColumnToExist(column="caption_stripped"),
            gxe.ExpectColumnValuesToNotBeNull(column="caption_stripped"),
            gxe.ExpectColumnValueLengthsToBeBetween(column="caption_stripped", min_value=1),
        ]
        for side in ("width", "height"):
            expectations += [
                gxe.ExpectColumnValuesToNotBeNull(column=side),
                gxe.ExpectColumnValuesToBeBetween(column=side, min_value=1, max_value=MAX_SIDE),
            ]
        for prefix in ("image", "text"):
            expectations += [
                gxe.ExpectColumnValuesToNotBeNull(column=f"{prefix}_dim"),
                gxe.ExpectColumnValuesToBeBetween(
                    column=f"{prefix}_dim",
                    min_value=param(f"{prefix}_dim"),
                    max_value=param(f"{prefix}_dim"),
                ),
                gxe.ExpectColumnValuesToBeBetween(
                    column=f"{prefix}_nonfinite", min_value=0, max_value=0
                ),
                gxe.ExpectColumnValuesToBeBetween(
                    column=f"{prefix}_norm",
                    min_value=param("norm_min"),
                    max_value=param("norm_max"),
                ),
            ]
        for expectation in expectations:
            suite.add_expectation(expectation)
        self.validation = self.context.validation_definitions.add(
            gx.ValidationDefinition(name="asif_anchor_batch", data=batch_definition, suite=suite)
        )
        self.run_lock = threading.Lock()

    @classmethod
    def get(cls) -> _Gx:
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance


def jsonable(x: Any) -> Any:
    """`x` in plain JSON types (GX results can hold numpy scalars and NaN, which become null)."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [jsonable(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if x is pd.NA or x is pd.NaT:
        return None
    if isinstance(x, str | int | float | bool) or x is None:
        return x
    return str(x)


@dataclass
class ValidationReport:
    """The outcome of validating one batch: success, readable failures, GX statistics and result."""

    success: bool
    failed_expectations: list[str]
    statistics: dict[str, Any]
    row_count: int
    seconds: float
    gx_result: dict[str, Any] = field(default_factory=dict, repr=False)

    def as_json(self) -> dict[str, Any]:
        """The report with the serialised GX result, as plain JSON types."""
        return jsonable(
            {
                "success": self.success,
                "failed_expectations": self.failed_expectations,
                "statistics": self.statistics,
                "row_count": self.row_count,
                "seconds": self.seconds,
                "gx_result": self.gx_result,
            }
        )

    def summary(self) -> str:
        """One paragraph: pass/fail and each failed expectation."""
        if self.success:
            checks = self.statistics.get("evaluated_expectations")
            return f"batch of {self.row_count} rows passed {checks} checks"
        return f"batch of {self.row_count} rows failed:\n- " + "\n- ".join(self.failed_expectations)

    @classmethod
    def failure(cls, message: str, row_count: int) -> ValidationReport:
        """A report for a batch rejected before or after GX (e.g. it does not fit the schema)."""
        return cls(
            success=False,
            failed_expectations=[message],
            statistics={"evaluated_expectations": 0, "unsuccessful_expectations": 1},
            row_count=row_count,
            seconds=0.0,
        )


def _describe(result: Any, frame: pd.DataFrame) -> str | None:
    """A person's sentence for one failed GX expectation result (None: redundant, skip)."""
    cfg = result.expectation_config
    kwargs = {k: v for k, v in cfg.kwargs.items() if k not in ("batch_id", "column")}
    column = cfg.kwargs.get("column")
    what = f"{cfg.type}({column}{''.join(f', {k}={v}' for k, v in kwargs.items())})"
    label = DESCRIPTIONS.get(column, column)
    info = result.exception_info or {}
    raised = [v for v in info.values() if isinstance(v, dict) and v.get("raised_exception")]
    if info.get("raised_exception") or raised:
        if column not in frame.columns:
            return None  # reported once by expect_column_to_exist
        message = info.get("exception_message") or (
            raised[0].get("exception_message") if raised else ""
        )
        return f"{what}: could not be evaluated on {label}: {message}"
    if cfg.type == "expect_column_to_exist":
        return f"{what}: the batch has no {label} column"
    res = result.result or {}
    count = res.get("unexpected_count")
    total = res.get("element_count", len(frame))
    samples = [
        float(f"{v:.6g}") if isinstance(v, float) else v
        for v in jsonable((res.get("partial_unexpected_list") or [])[:SAMPLE_SIZE])
    ]
    text = f"{what}: {count} of {total} rows fail ({label}); sample values {samples}"
    index = (res.get("partial_unexpected_index_list") or [])[:SAMPLE_SIZE]
    if index and "id" in frame.columns and column != "id":
        text += f"; ids {[frame['id'].iloc[i] for i in index]}"
    return text


def validate_anchor_batch(
    batch: pa.Table, *, image_dim: int, text_dim: int, norm_tolerance: float = 1e-3
) -> ValidationReport:
    """Validate an anchor batch with the process's GX suite.

    Checks: id present, not null, unique; caption not null and not blank; width/height not
    null and in [1, 65535]; each embedding present, of length `image_dim` / `text_dim`, with no
    NaN/inf, and with L2 norm within `norm_tolerance` of 1. A zero-row batch passes.
    Raises `SchemaMismatchError` only if an embedding column is not a list at all.
    """
    start = time.perf_counter()
    frame = anchor_batch_frame(batch)
    gx = _Gx.get()
    params = {
        "image_dim": int(image_dim),
        "text_dim": int(text_dim),
        "norm_min": 1.0 - norm_tolerance,
        "norm_max": 1.0 + norm_tolerance,
    }
    with gx.run_lock:
        result = gx.validation.run(
            batch_parameters={"dataframe": frame},
            expectation_parameters=params,
            result_format={"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_SIZE},
        )
    failed = [_describe(r, frame) for r in result.results if not r.success]
    return ValidationReport(
        success=bool(result.success),
        failed_expectations=[f for f in failed if f is not None],
        statistics=jsonable(dict(result.statistics)),
        row_count=batch.num_rows,
        seconds=time.perf_counter() - start,
        gx_result=jsonable(result.to_json_dict()),
    )
