import pytest

from asif.evaluation.run import open_setup
from tests.evaluation.shared import make_anchor_table


def test_open_setup_defaults_to_the_anchor_database(tmp_path, monkeypatch):
    monkeypatch.delenv("ASIF_EVAL_CACHE", raising=False)
    table = make_anchor_table(tmp_path, slice(0, 20))
    make_anchor_table(tmp_path, slice(20, 30))
    latest = open_setup(str(tmp_path))
    assert latest.table.version == table.version + 1 and len(latest.table) == 30
    assert latest.evaluations.dataset_uri.startswith(str(tmp_path))
    assert latest.cache.root == tmp_path / "evaluation-cache"
    assert latest.plots_dir == tmp_path / "evaluation-plots"
    old = open_setup(str(tmp_path), version=table.version, evaluations_uri=str(tmp_path / "e"))
    assert len(old.table) == 20 and old.table.read_only
    assert old.evaluations.dataset_uri.startswith(str(tmp_path / "e"))
    with pytest.raises(ValueError):
        open_setup(str(tmp_path), "missing")
