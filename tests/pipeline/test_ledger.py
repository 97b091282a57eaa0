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
