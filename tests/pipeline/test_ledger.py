import json

from asif.pipeline.ledger import LEDGER_NAME, ShardLedger


def test_ledger_keeps_shards_per_table_across_runs(tmp_path):
    ledger = ShardLedger(tmp_path, "table-a")
    assert ledger.done == set() and not (tmp_path / LEDGER_NAME).exists()
    ledger.mark(["00001.parquet", "00000.parquet"])
    ShardLedger(tmp_path, "table-b").mark(["00000.parquet"])
    assert ShardLedger(tmp_path, "table-a").done == {"00000.parquet", "00001.parquet"}
    data = json.loads((tmp_path / LEDGER_NAME).read_text())
    assert data == {"table-a": ["00000.parquet", "00001.parquet"], "table-b": ["00000.parquet"]}
    again = ShardLedger(tmp_path, "table-a")
    again.reset()
    assert ShardLedger(tmp_path, "table-a").done == set()
    assert ShardLedger(tmp_path, "table-b").done == {"00000.parquet"}
    assert [p.name for p in tmp_path.iterdir()] == [LEDGER_NAME]  # no temporary file left


def test_builds_are_recorded_beside_the_table_and_found_by_version(tmp_path):
    from asif.pipeline.ledger import BUILDS_TABLE, build_of, read_builds, record_build
    from asif.store.location import TableLocation
    from tests.pipeline.test_summary import SUBSET, summary

    location = TableLocation(str(tmp_path / "db"))
    assert read_builds(location) == [] and build_of(location, 1) is None
    record_build(location, summary(version_before=0, version=4, tag="first"), flow_run_id="r1")
    record_build(location, summary(version_before=4, version=6, subset=None, tag=None))
    record_build(TableLocation(location.uri, "other"), summary(table_name="other", version=9))
    assert (tmp_path / "db" / f"{BUILDS_TABLE}.lance").is_dir()
    first, second = read_builds(location)
    assert (first.version_before, first.version, first.tag, first.flow_run_id) == (
        0,
        4,
        "first",
        "r1",
    )
    assert first.subset == SUBSET and first.summary["inserted"] == 4
    assert first.url_list == "cc12m.tsv" and second.subset is None
    assert [build_of(location, v) for v in (1, 4, 5, 6, 7)] == [first, first, second, second, None]
    assert [r.version for r in read_builds(TableLocation(location.uri, "other"))] == [9]
