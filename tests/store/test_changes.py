import pytest

from asif.errors import TableNotFoundError
from asif.store.changes import changed_rows
from tests.store.rows import make_batch


def test_changed_rows_between_versions_and_tags(table):
    b1 = make_batch(0, 6)
    v1 = table.upsert(b1).version
    table.tag("before")
    gone = b1.column("id").to_pylist()[:2]
    v2 = table.remove(gone + ["not-an-id", "it's quoted"])
    v3 = table.upsert(make_batch(6, 3)).version
    added = make_batch(6, 3).column("id").to_pylist()

    diff = changed_rows(table, v1, v2)
    assert (diff.added, diff.removed) == ([], sorted(gone))
    diff = changed_rows(table, "before")  # to this handle's version by default
    assert diff.to_version == v3
    assert diff.added == sorted(added) and diff.removed == sorted(gone)
    diff = changed_rows(table, 1, v1)
    assert diff.added == sorted(b1.column("id").to_pylist()) and diff.removed == []
    assert changed_rows(table, v3, v3).added == []
    with pytest.raises(TableNotFoundError, match="no tag 'nope'"):
        changed_rows(table, "nope")
