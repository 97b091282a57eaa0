import numpy as np
import pytest

from asif.serve.live_model import LiveModel
from asif.store.batch import build_anchor_batch
from asif.store.table import AnchorTable
from tests.dense_reference import random_unit

D_IMAGE, D_TEXT = 12, 8


def make_batch(rng, lo, hi, ids=None):
    n = hi - lo
    return build_anchor_batch(
        urls=[f"http://x/{i}.jpg" for i in range(lo, hi)],
        captions=[f"caption {i}" for i in range(lo, hi)],
        widths=[1] * n,
        heights=[1] * n,
        image_embeddings=random_unit(rng, n, D_IMAGE),
        text_embeddings=random_unit(rng, n, D_TEXT),
        ids=ids or [f"a{i}" for i in range(lo, hi)],
    )


@pytest.fixture
def table(tmp_path):
    t = AnchorTable.create_or_open(
        str(tmp_path / "db"), image_encoder="i", text_encoder="t", image_dim=D_IMAGE,
        text_dim=D_TEXT,
    )  # fmt: skip
    t.upsert(make_batch(np.random.default_rng(0), 0, 200))
    return t


def by_id(model, queries, kind):
    """{anchor id: r value} per query, so models with rows in another order compare equal."""
    rel = model.image_relative(queries) if kind == "image" else model.text_relative(queries)
    ids = model.anchors.ids
    return [
        {ids[i]: v for i, v in zip(row_i, row_v, strict=True) if v > 0}
        for row_i, row_v in zip(rel.indices, rel.values, strict=True)
    ]


def assert_same_model(live, b):
    a, b = live.compacted(), b.compacted()
    assert len(live) == len(a) == len(b)
    assert sorted(a.anchors.ids) == sorted(b.anchors.ids)
    order = b.anchors.rows(a.anchors.ids)
    assert [b.anchors.captions[i] for i in order] == a.anchors.captions
    for kind in ("image", "text"):
        np.testing.assert_array_equal(
            b.scan.matrix(kind).to_float32()[order], a.scan.matrix(kind).to_float32()
        )
    rng = np.random.default_rng(9)
    for kind, d in (("image", D_IMAGE), ("text", D_TEXT)):
        q = random_unit(rng, 5, d)
        for x, y in zip(by_id(live, q, kind), by_id(b, q, kind), strict=True):
            assert x.keys() == y.keys()
            np.testing.assert_allclose([x[i] for i in x], [y[i] for i in x], rtol=1e-5)


@pytest.mark.parametrize("precision", ["float32", "int8"])
def test_incremental_updates_equal_a_fresh_load(table, precision):
    rng = np.random.default_rng(1)
    live = LiveModel(table.uri, precision=precision, k=30, p=4.0)
    first = live.snapshot
    steps = [
        lambda: table.upsert(make_batch(rng, 200, 260)),  # add
        lambda: table.remove([f"a{i}" for i in range(0, 200, 5)]),  # remove
        lambda: table.upsert(make_batch(rng, 250, 300)),  # 10 rewritten, 40 new
        lambda: table.remove(["a1"]) and table.upsert(make_batch(rng, 1, 2)),  # two versions
    ]
    dead = []
    for step in steps:
        step()
        assert live.refresh()
        snap = live.snapshot
        assert snap.how == "incremental" and snap.version == table.version
        fresh = LiveModel(table.uri, precision=precision, k=30, p=4.0).snapshot
        assert_same_model(snap.model, fresh.model)
        assert snap.model.scan.precision == precision
        dead.append(len(snap.model.scan.dead))
    assert dead == [0, 40, 50, 51]  # removed and rewritten rows are tombstones
    assert not live.refresh()
    assert len(first.model) == 200  # the first snapshot never changed
    at_2 = LiveModel(table.uri, version=2, precision=precision).snapshot.model
    np.testing.assert_array_equal(
        first.model.compacted().scan.image.to_float32(), at_2.compacted().scan.image.to_float32()
    )


@pytest.mark.parametrize("change", ["remove", "update"])
def test_a_restored_version_is_served_as_a_fresh_load(table, change):
    """Restoring an earlier version revives rows in fragments the model already has: no
    incremental delta describes that, so the model is loaded afresh (issue 13, item 1)."""
    rng = np.random.default_rng(7)
    live = LiveModel(table.uri, k=30, p=4.0)
    before = table.version
    if change == "remove":
        table.remove([f"a{i}" for i in range(20)])
    else:
        table.upsert(make_batch(rng, 0, 20))  # the same ids, new embeddings
    assert live.refresh() and live.snapshot.how == "incremental"
    table.restore(before)
    assert live.refresh() and live.snapshot.how == "full"
    assert len(live.snapshot.model) == len(table) == 200
    assert_same_model(live.snapshot.model, LiveModel(table.uri, k=30, p=4.0).snapshot.model)


def test_a_restore_hidden_behind_a_later_delete_is_seen(table):
    """Between two refreshes a restore revives a0 and a delete removes a5 from the same
    fragment: its deletion count is unchanged, but the table holds an id the model lacks."""
    before = table.version
    table.remove(["a0"])
    live = LiveModel(table.uri, k=30, p=4.0)
    table.restore(before)
    table.remove(["a5"])
    assert live.refresh() and live.snapshot.how == "full"
    assert sorted(live.snapshot.model.anchors.ids) == sorted(
        table.read(["id"]).column("id").to_pylist()
    )


def test_read_delta_refuses_what_it_cannot_describe(table):
    from asif.store.changes import read_delta

    live = LiveModel(table.uri)
    snap, before = live.snapshot, table.version
    table.remove(["a0"])
    removed = table.at(table.version)
    delta = read_delta(snap.table, removed, snap.ids)
    assert delta is not None and delta.dropped == ["a0"] and not delta.written_ids
    table.restore(before)
    assert read_delta(removed, table.at(table.version), delta.ids) is None


def test_pinned_model_never_moves(table):
    table.tag("prod")
    by_tag = LiveModel(table.uri, version="prod")
    by_number = LiveModel(table.uri, version=table.version)
    table.upsert(make_batch(np.random.default_rng(2), 500, 510))
    for live in (by_tag, by_number):
        assert not live.refresh()
        assert len(live.snapshot.model) == 200 and live.pinned
    assert by_tag.tag == "prod"


def test_large_change_reloads_fully(table):
    live = LiveModel(table.uri, k=10)
    table.remove([f"a{i}" for i in range(150)])
    assert live.refresh() and live.snapshot.how == "full" and len(live.snapshot.model) == 50


def test_many_tombstones_get_compacted(table):
    from asif.model.updates import apply_delta
    from asif.store.changes import read_delta

    live = LiveModel(table.uri, k=10)
    snap = live.snapshot
    table.remove([f"a{i}" for i in range(30)])
    view = table.at(table.version)
    delta = read_delta(snap.table, view, snap.ids)
    assert delta is not None
    kept = apply_delta(snap.model, delta)
    compact = apply_delta(snap.model, delta, max_dead=10)
    assert len(kept.scan.dead) == 30 and len(kept.anchors) == 200 and len(kept) == 170
    assert len(compact.scan.dead) == 0 and len(compact.anchors) == 170
    assert_same_model(kept, compact.compacted())


def test_cache_dir_memory_maps_and_still_updates(table, tmp_path):
    cache = tmp_path / "cache"
    live = LiveModel(table.uri, precision="float16", k=20, cache_dir=cache)
    first = live.snapshot.model
    assert isinstance(first.scan.base.image.data.base, np.memmap)  # mapped, not read
    assert [p.name for p in cache.iterdir()] == [f"anchors-v{table.version}-float16"]
    again = LiveModel(table.uri, precision="float16", k=20, cache_dir=cache).snapshot.model
    np.testing.assert_array_equal(again.scan.base.image.data, first.scan.base.image.data)
    table.upsert(make_batch(np.random.default_rng(5), 300, 320))
    table.remove(["a3", "a4"])
    assert live.refresh() and live.snapshot.how == "incremental"
    fresh = LiveModel(table.uri, precision="float16", k=20, cache_dir=cache).snapshot.model
    assert_same_model(live.snapshot.model, fresh)
    assert [p.name for p in cache.iterdir()] == [f"anchors-v{table.version}-float16"]
