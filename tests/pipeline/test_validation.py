import json
import re
import time

import numpy as np
import pytest

from asif.pipeline.validation import anchor_batch_frame, validate_anchor_batch
from tests.pipeline.batches import DI, DT, bad_batch, make_batch, unit


def validate(batch, **kw):
    return validate_anchor_batch(batch, image_dim=DI, text_dim=DT, **kw)


def test_good_batch_passes_and_report_is_json():
    report = validate(make_batch())
    assert report.success, report.failed_expectations
    assert report.failed_expectations == []
    assert report.statistics["unsuccessful_expectations"] == 0
    assert report.statistics["evaluated_expectations"] >= 15
    data = json.loads(json.dumps(report.as_json()))
    assert data["success"] is True and data["gx_result"]["success"] is True
    assert len(data["gx_result"]["results"]) == report.statistics["evaluated_expectations"]


def test_frame_has_one_scalar_row_per_batch_row():
    image = unit(np.random.default_rng(1), 3, DI)
    image[1] *= 3.0
    image[2, 0] = np.inf
    frame = anchor_batch_frame(make_batch(3, image=image))
    assert list(frame["image_dim"]) == [DI] * 3
    assert list(frame["image_nonfinite"]) == [0, 0, 1]
    assert frame["image_norm"].iloc[0] == pytest.approx(1.0, abs=1e-6)
    assert frame["image_norm"].iloc[1] == pytest.approx(3.0, abs=1e-5)
    assert np.isnan(frame["image_norm"].iloc[2])


BAD = {
    "duplicate id": r"expect_column_values_to_be_unique\(id\): 2 of 12 rows",
    "null id": r"expect_column_values_to_not_be_null\(id\): 1 of 12 rows",
    "blank caption": r"lengths_to_be_between\(caption_stripped, min_value=1\): 1 of 12.*\[''\]",
    "null caption": r"not_be_null\(caption_stripped\): 1 of 12",
    "wrong image dim": r"between\(image_dim, min_value=8.*12 of 12 rows.*\[9, 9",
    "ragged text dim": r"between\(text_dim.*1 of 12 rows.*\[5\]",
    "non-unit norm": r"between\(image_norm, min_value=0.999, max_value=1.001\): 1 of 12.*\[1.1",
    "nan": r"between\(image_nonfinite.*1 of 12 rows fail \(NaN/inf values in image_embedding\)",
    "inf": r"image_nonfinite.*1 of 12 rows",
    "zero width": r"between\(width, min_value=1.*max_value=65535.*1 of 12.*\[0\]",
    "huge width": r"between\(width.*1 of 12.*\[70000\]",
    "null height": r"not_be_null\(height\): 1 of 12",
    "missing caption column": r"column_to_exist\(caption_stripped\): the batch has no caption",
    "null embedding": r"not_be_null\(image_dim\): 1 of 12",
}


@pytest.mark.parametrize("kind", list(BAD))
def test_bad_batch_fails_with_a_message_naming_the_problem(kind):
    report = validate(bad_batch(kind))
    assert not report.success
    text = "\n".join(report.failed_expectations)
    assert len(report.failed_expectations) == 1, text
    assert re.search(BAD[kind], text), text
    json.dumps(report.as_json())


def test_failures_name_the_rows_ids():
    b = bad_batch("non-unit norm")
    report = validate(b)
    assert b.column("id")[2].as_py() in report.failed_expectations[0]


def test_norm_tolerance_is_a_parameter():
    image = unit(np.random.default_rng(0), 12, DI) * 1.01
    assert not validate(make_batch(image=image)).success
    assert validate(make_batch(image=image), norm_tolerance=0.02).success


def test_empty_batch_is_valid():
    report = validate(make_batch().slice(0, 0))
    assert report.success and report.row_count == 0


def test_thousand_rows_validate_quickly():
    validate(make_batch())  # GX is set up once per process: not part of the timing
    batch = make_batch(1000, di=1280, dt=384)
    start = time.perf_counter()
    report = validate_anchor_batch(batch, image_dim=1280, text_dim=384)
    elapsed = time.perf_counter() - start
    assert report.success
    assert elapsed < 10.0, f"validating 1,000 rows took {elapsed:.2f} s"
