import numpy as np
import pyarrow as pa
import pytest

from asif.errors import EmptyInputError, UnsupportedOperationError
from asif.model import AsifModel, ModelSettings
from asif.model.updates import apply_delta, updatable
from asif.scan.tombstones import TombstoneScan
from asif.store.changes import TableDelta
from tests.dense_reference import random_unit


def model(rng, n=20):
    ids = [f"a{i}" for i in range(n)]
    return AsifModel.from_embeddings(
        random_unit(rng, n, 6), random_unit(rng, n, 4), ids, ModelSettings("i", "t", k=5), ids=ids
    )


def delta(rng, dropped, written):
    return TableDelta(
        from_version=1, to_version=2, ids=pa.array([], pa.string()), dropped=dropped,
        written_ids=written, written_captions=written, written_urls=[None] * len(written),
        written_image=random_unit(rng, len(written), 6),
        written_text=random_unit(rng, len(written), 4),
    )  # fmt: skip


def test_apply_delta_retires_and_appends_without_touching_the_old_model():
    rng = np.random.default_rng(0)
    live = updatable(model(rng))
    new = apply_delta(live, delta(rng, ["a1", "a2"], ["b0", "a1"]))  # a1 rewritten
    assert isinstance(new.scan, TombstoneScan) and new.scan.dead.tolist() == [1, 2]
    assert len(live) == 20 and len(new) == 20 and new.anchors.rows(["a1"]).tolist() == [21]
    compact = new.compacted()
    assert sorted(compact.anchors.ids) == sorted([f"a{i}" for i in range(20) if i != 2] + ["b0"])
    q = random_unit(rng, 3, 6)
    by_id = {a: i for i, a in enumerate(compact.anchors.ids)}
    r_live, r_compact = new.image_relative(q), compact.image_relative(q)
    ids_live = [[new.anchors.ids[i] for i in row] for row in r_live.indices]
    ids_compact = [[compact.anchors.ids[i] for i in row] for row in r_compact.indices]
    assert ids_live == ids_compact and set(by_id) >= set(ids_live[0])
    np.testing.assert_allclose(r_live.values, r_compact.values, rtol=1e-6)


def test_many_tombstones_compact_and_errors():
    rng = np.random.default_rng(1)
    live = updatable(model(rng))
    compacted = apply_delta(live, delta(rng, [f"a{i}" for i in range(6)], []), max_dead=3)
    assert len(compacted.scan.dead) == 0 and len(compacted.anchors) == 14
    with pytest.raises(EmptyInputError, match="version 2"):
        apply_delta(live, delta(rng, [f"a{i}" for i in range(20)], []))
    with pytest.raises(UnsupportedOperationError, match="updatable"):
        apply_delta(model(rng), delta(rng, [], []))
