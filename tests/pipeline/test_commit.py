import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from asif.errors import EncoderMismatchError, ValidationFailedError
from asif.pipeline.commit import CommitResult, commit_batch, quarantine_batch
from asif.pipeline.validation import validate_anchor_batch
from asif.store.batch import conform_batch
from asif.store.table import AnchorTable
from tests.pipeline.batches import DI, DT, bad_batch, make_batch


def test_quarantine_writes_parquet_and_json(tmp_path):
    b = bad_batch("nan")
    report = validate_anchor_batch(b, image_dim=DI, text_dim=DT)
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
    assert result.validate_seconds > 0 and result.write_seconds > 0  # the summary's stage times
    again = commit_batch(table, make_batch(), quarantine_dir=tmp_path / "q")
    assert (again.inserted, again.updated) == (0, 12) and len(table) == 12
    assert not (tmp_path / "q").exists()
    empty = commit_batch(table, make_batch().slice(0, 0), quarantine_dir=tmp_path / "q")
    assert empty.committed and empty.version == table.version == 3


@pytest.mark.parametrize("kind", ["duplicate id", "nan", "wrong image dim", "zero width"])
def test_commit_bad_batch_quarantines_and_leaves_table_as_it_was(table, tmp_path, kind):
    table.upsert(make_batch(5, start=100, seed=3))
    version, rows = table.version, table.read()
    bad = bad_batch(kind)
    result = commit_batch(table, bad, quarantine_dir=tmp_path / "q", context={"shard": "s7"})
    assert not result.committed and result.inserted == 0 and result.version == version
    assert result.validate_seconds > 0 and result.write_seconds > 0  # the quarantine write
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
        commit_batch(table, bad_batch("nan"), quarantine_dir=tmp_path / "q", raise_on_failure=True)
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


def test_a_batch_is_conformed_once(table, tmp_path, monkeypatch):
    import asif.store.table

    calls = []

    def counting(batch, target, *, where):
        calls.append(batch.num_rows)
        return conform_batch(batch, target, where=where)

    monkeypatch.setattr(asif.store.table, "conform_batch", counting)
    assert commit_batch(table, make_batch(), quarantine_dir=tmp_path / "q").committed
    assert calls == [12]
    misfit = make_batch(3).drop_columns(["url"])
    assert not commit_batch(table, misfit, quarantine_dir=tmp_path / "q").committed
    assert calls == [12, 3]
