import json
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from asif.errors import EncoderMismatchError, ValidationFailedError
from asif.pipeline.validation import (
    CommitResult,
    anchor_batch_frame,
    commit_batch,
    quarantine_batch,
    validate_anchor_batch,
    warm_up,
)
from asif.store.table import AnchorTable, build_anchor_batch

DI, DT = 8, 4


def unit(rng, n, d):
    x = rng.normal(size=(n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def make_batch(n=12, start=0, *, seed=0, di=DI, dt=DT, image=None, captions=None, widths=None):
    rng = np.random.default_rng(seed)
    return build_anchor_batch(
        urls=[f"http://127.0.0.1/{i}.jpg" for i in range(start, start + n)],
        captions=captions or [f"caption {i}" for i in range(start, start + n)],
        widths=widths or [64] * n,
        heights=[48] * n,
        image_embeddings=unit(rng, n, di) if image is None else image,
        text_embeddings=unit(rng, n, dt),
        shard="shard-0",
        image_encoder="img-enc",
        text_encoder="txt-enc",
    )


def set_col(batch, name, values, type_=None):
    i = batch.schema.get_field_index(name)
    field = batch.schema.field(i)
    type_ = type_ or field.type
    return batch.set_column(i, pa.field(name, type_), pa.array(values, type_))


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


def _bad(kind):
    b = make_batch()
    ids = b.column("id").to_pylist()
    if kind == "duplicate id":
        return set_col(b, "id", [ids[0]] + ids[:-1])
    if kind == "null id":
        return set_col(b, "id", [None] + ids[1:])
    if kind == "blank caption":
        return make_batch(captions=["   "] + [f"c{i}" for i in range(1, 12)])
    if kind == "null caption":
        return set_col(b, "caption", [None] + [f"c{i}" for i in range(1, 12)])
    if kind == "wrong image dim":
        return make_batch(di=DI + 1)
    if kind == "ragged text dim":
        rows = b.column("text_embedding").to_pylist()
        rows[4] = rows[4][:-1] + [0.0, 0.0]
        rows[4] = list(np.asarray(rows[4]) / np.linalg.norm(rows[4]))
        return set_col(b, "text_embedding", rows, pa.list_(pa.float32()))
    if kind == "non-unit norm":
        image = unit(np.random.default_rng(0), 12, DI)
        image[2] *= 1.1
        return make_batch(image=image)
    if kind == "nan":
        image = unit(np.random.default_rng(0), 12, DI)
        image[3, 1] = np.nan
        return make_batch(image=image)
    if kind == "inf":
        image = unit(np.random.default_rng(0), 12, DI)
        image[3, 1] = -np.inf
        return make_batch(image=image)
    if kind == "zero width":
        return make_batch(widths=[0] + [64] * 11)
    if kind == "huge width":
        return make_batch(widths=[64] * 11 + [70000])
    if kind == "null height":
        return set_col(b, "height", [None] + [48] * 11)
    if kind == "missing caption column":
        return b.drop_columns(["caption"])
    if kind == "null embedding":
        return set_col(b, "image_embedding", [None] + b.column("image_embedding").to_pylist()[1:])
    raise AssertionError(kind)


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
    report = validate(_bad(kind))
    assert not report.success
    text = "\n".join(report.failed_expectations)
    assert len(report.failed_expectations) == 1, text
    assert __import__("re").search(BAD[kind], text), text
    json.dumps(report.as_json())


def test_failures_name_the_rows_ids():
    b = _bad("non-unit norm")
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
    warm_up()  # GX set up already by other tests; make sure anyway
    batch = make_batch(1000, di=1280, dt=384)
    start = time.perf_counter()
    report = validate_anchor_batch(batch, image_dim=1280, text_dim=384)
    elapsed = time.perf_counter() - start
    assert report.success
    assert elapsed < 10.0, f"validating 1,000 rows took {elapsed:.2f} s"


def test_quarantine_writes_parquet_and_json(tmp_path):
    b = _bad("nan")
    report = validate(b)
    folder = quarantine_batch(b, report, tmp_path / "q", context={"shard": "shard-0"})
    assert folder.parent == tmp_path / "q"
    back = pq.read_table(folder / "batch.parquet")
    assert back.schema.equals(b.schema)
    assert back.schema.metadata[b"asif.image_encoder"] == b"img-enc"
    assert back.column("id").equals(b.column("id")) and back.num_rows == b.num_rows
    data = json.loads((folder / "report.json").read_text())
    assert data["success"] is False and data["context"] == {"shard": "shard-0"}
    assert "image_nonfinite" in data["failed_expectations"][0]
    other = quarantine_batch(b, report, tmp_path / "q")
    assert other != folder  # each batch its own folder


@pytest.fixture
def table(tmp_path):
    return AnchorTable.create_or_open(
        str(tmp_path / "db"),
        image_encoder="img-enc",
        text_encoder="txt-enc",
        image_dim=DI,
        text_dim=DT,
    )


def test_commit_good_batch_upserts(table, tmp_path):
    result = commit_batch(table, make_batch(), quarantine_dir=tmp_path / "q")
    assert isinstance(result, CommitResult)
    assert result.committed and (result.inserted, result.updated) == (12, 0)
    assert result.version == table.version == 2 and len(table) == 12
    again = commit_batch(table, make_batch(), quarantine_dir=tmp_path / "q")
    assert (again.inserted, again.updated) == (0, 12) and len(table) == 12
    assert not (tmp_path / "q").exists()
    empty = commit_batch(table, make_batch().slice(0, 0), quarantine_dir=tmp_path / "q")
    assert empty.committed and empty.version == table.version == 3


@pytest.mark.parametrize("kind", ["duplicate id", "nan", "wrong image dim", "zero width"])
def test_commit_bad_batch_quarantines_and_leaves_table_as_it_was(table, tmp_path, kind):
    table.upsert(make_batch(5, start=100, seed=3))
    version, rows = table.version, table.read()
    bad = _bad(kind)
    result = commit_batch(table, bad, quarantine_dir=tmp_path / "q", context={"shard": "s7"})
    assert not result.committed and result.inserted == 0 and result.version == version
    assert table.version == version and table.read().equals(rows)
    assert AnchorTable.open(table.uri).version == version
    folder = result.quarantine_path
    assert folder is not None and folder.parent == tmp_path / "q"
    assert pq.read_table(folder / "batch.parquet").num_rows == bad.num_rows
    data = json.loads((folder / "report.json").read_text())
    assert data["failed_expectations"] == result.report.failed_expectations
    assert data["context"]["shard"] == "s7" and data["context"]["table_version"] == version


def test_commit_can_raise_instead(table, tmp_path):
    with pytest.raises(ValidationFailedError, match="quarantined at") as info:
        commit_batch(table, _bad("nan"), quarantine_dir=tmp_path / "q", raise_on_failure=True)
    assert info.value.report.success is False
    assert (info.value.quarantine_path / "report.json").exists()
    assert table.version == 1


def test_commit_schema_problem_after_gx_is_quarantined(table, tmp_path):
    result = commit_batch(table, make_batch().drop_columns(["url"]), quarantine_dir=tmp_path / "q")
    assert (
        not result.committed and "lacks column(s) ['url']" in result.report.failed_expectations[0]
    )
    assert (result.quarantine_path / "batch.parquet").exists() and table.version == 1


def test_commit_non_list_embedding_is_quarantined(table, tmp_path):
    b = make_batch(3)
    b = b.set_column(6, "image_embedding", pa.array(["x", "y", "z"]))
    result = commit_batch(table, b, quarantine_dir=tmp_path / "q")
    assert not result.committed and "not a list of floats" in result.report.failed_expectations[0]


def test_commit_other_encoder_raises_without_quarantine(table, tmp_path):
    b = make_batch()
    meta = {**b.schema.metadata, b"asif.image_encoder": b"clip"}
    with pytest.raises(EncoderMismatchError, match="'clip'.*'img-enc'"):
        commit_batch(table, b.replace_schema_metadata(meta), quarantine_dir=tmp_path / "q")
    assert not (tmp_path / "q").exists() and table.version == 1
