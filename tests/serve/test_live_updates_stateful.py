"""Live updates, driven by a hypothesis state machine: after any sequence of table changes
(append, delete, update, restore or checkout of an older version, compaction, a schema
change, other encoders) a refreshed `LiveModel` equals a fresh load of the new version,
whether it took the incremental path or fell back to a full load.

Each rule changes the table and, mostly, refreshes at once (`settle`); sometimes it leaves the
change pending, so one refresh meets several versions at once (a restore hidden behind a later
delete, say). The default suite runs a bounded, derandomized machine for float32 and int8 and
checks that both the incremental and the full path were taken; `-m slow` runs it much longer.
The tests at the end pin the bugs the machine found.
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from collections import Counter
from datetime import timedelta

import lance
import lancedb
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

from asif.errors import EmptyInputError
from asif.model import AsifModel
from asif.scan.matrix import Precision
from asif.serve.live_model import LiveModel
from asif.store.batch import build_anchor_batch
from asif.store.schema import (
    ID,
    IMAGE_EMBEDDING,
    META_IMAGE_ENCODER,
    META_TEXT_ENCODER,
    TEXT_EMBEDDING,
)
from asif.store.table import AnchorTable
from tests.dense_reference import random_unit
from tests.serve.test_live_model import by_id, make_batch

K, P = 10, 4.0
# (image encoder, text encoder, image dim, text dim): the table starts with the first
ENCODERS = [("i", "t", 12, 8), ("i2", "t2", 6, 10)]
SEEDS = st.integers(0, 2**32 - 1)
SETTLE = st.sampled_from([True, True, True, False])  # shrinks towards refreshing every step
FLOATS = {"float16": pa.float16(), "float32": pa.float32(), "float64": pa.float64()}

HOWS: Counter[str] = Counter()  # how each refresh was done, over all runs of a test


def assert_same_model(live: AsifModel, fresh: AsifModel, rng: np.random.Generator) -> None:
    """Same settings, precision, ids, captions, urls and matrices by id, and the same relative
    representations of random queries by id (rows may be in another order or tombstoned)."""
    a, b = live.compacted(), fresh.compacted()
    assert a.settings == b.settings
    assert a.scan.precision == b.scan.precision
    assert len(live) == len(a) == len(b)
    assert sorted(a.anchors.ids) == sorted(b.anchors.ids)
    order = b.anchors.rows(a.anchors.ids)
    assert [b.anchors.captions[i] for i in order] == a.anchors.captions
    assert [b.anchors.urls[i] for i in order] == list(a.anchors.urls)
    for kind in ("image", "text"):
        assert a.scan.dim(kind) == b.scan.dim(kind)
        np.testing.assert_array_equal(
            b.scan.matrix(kind).to_float32()[order], a.scan.matrix(kind).to_float32()
        )
        q = random_unit(rng, 4, b.scan.dim(kind))
        for x, y in zip(by_id(live, q, kind), by_id(fresh, q, kind), strict=True):
            assert x.keys() == y.keys()
            np.testing.assert_allclose([x[i] for i in x], [y[i] for i in x], rtol=1e-5)


class LiveUpdates(RuleBasedStateMachine):
    """A small anchor table, changed at random, and a `LiveModel` following it."""

    precision: Precision = "float32"
    table: AnchorTable  # made by the `create` initializer, like `live`

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="asif-live-")
        self.live: LiveModel | None = None
        self.next_id = 0
        self.columns_added = 0
        self.checks = 0

    # ----------------------------------------------------------------- helpers
    def _batch(self, ids: list[str], seed: int, encoders: tuple | None = None) -> pa.Table:
        image_name, text_name, image_dim, text_dim = encoders or (
            self.table.image_encoder, self.table.text_encoder,
            self.table.image_dim, self.table.text_dim,
        )  # fmt: skip
        rng, n = np.random.default_rng(seed), len(ids)
        batch = build_anchor_batch(
            urls=[f"http://x/{i}/{seed}.jpg" for i in ids],
            captions=[f"caption {i} {seed}" for i in ids],
            widths=[1] * n,
            heights=[1] * n,
            image_embeddings=random_unit(rng, n, image_dim),
            text_embeddings=random_unit(rng, n, text_dim),
            image_encoder=image_name if encoders else None,
            text_encoder=text_name if encoders else None,
            ids=ids,
        )
        if encoders:
            return batch
        for name in self._extra_columns():  # a write must give every column of the table
            batch = batch.append_column(name, pa.array([1] * n, pa.int32()))
        return batch

    def _extra_columns(self) -> list[str]:
        return [f.name for f in self.table.schema if f.name.startswith("extra")]

    def _new_ids(self, n: int) -> list[str]:
        self.next_id += n
        return [f"a{i}" for i in range(self.next_id - n, self.next_id)]

    def _ids(self) -> list[str]:
        return sorted(self.table.read([ID]).column(ID).to_pylist())

    def _fresh(self) -> LiveModel:
        return LiveModel(self.dir, precision=self.precision, k=K, p=P)

    def _sync(self) -> None:
        """Refresh, then the live model is at the table's version and equals a fresh load."""
        self.live.refresh()
        snap = self.live.snapshot
        assert snap.version == self.table.version
        HOWS[snap.how] += 1
        event(f"refresh: {snap.how}")
        fresh = self._fresh().snapshot
        assert sorted(snap.ids.to_pylist()) == sorted(fresh.model.anchors.ids) == self._ids()
        self.checks += 1
        assert_same_model(snap.model, fresh.model, np.random.default_rng(self.checks))
        assert not self.live.refresh() and self.live.snapshot is snap

    def _after(self, settle: bool) -> None:
        if settle:
            self._sync()

    def _rows_at(self, version: int) -> int:
        return len(self.table.at(version))

    # ------------------------------------------------------------------- rules
    @initialize(n=st.integers(16, 40), seed=SEEDS)
    def create(self, n: int, seed: int) -> None:
        image_name, text_name, image_dim, text_dim = ENCODERS[0]
        self.table = AnchorTable.create_or_open(
            self.dir, image_encoder=image_name, text_encoder=text_name,
            image_dim=image_dim, text_dim=text_dim,
        )  # fmt: skip
        self.table.upsert(self._batch(self._new_ids(n), seed))
        self.live = LiveModel(self.dir, precision=self.precision, k=K, p=P)
        assert self.live.snapshot.how == "full"

    @rule(n=st.integers(1, 6), seed=SEEDS, settle=SETTLE)
    def append(self, n: int, seed: int, settle: bool) -> None:
        self.table.upsert(self._batch(self._new_ids(n), seed))
        self._after(settle)

    @precondition(lambda self: len(self.table) > 1)
    @rule(data=st.data(), settle=SETTLE)
    def delete(self, data: st.DataObject, settle: bool) -> None:
        ids = self._ids()
        gone = data.draw(
            st.lists(st.sampled_from(ids), min_size=1, max_size=min(6, len(ids) - 1), unique=True)
        )
        self.table.remove(gone)
        self._after(settle)

    @rule(data=st.data(), n_new=st.integers(0, 3), seed=SEEDS, settle=SETTLE)
    def update(self, data: st.DataObject, n_new: int, seed: int, settle: bool) -> None:
        """Rewrite some ids (new embeddings, captions, urls), maybe with new ones."""
        ids = self._ids()
        same = data.draw(st.lists(st.sampled_from(ids), min_size=1, max_size=5, unique=True))
        self.table.upsert(self._batch(same + self._new_ids(n_new), seed))
        self._after(settle)

    @rule(
        data=st.data(),
        how=st.sampled_from(["number", "tag", "lancedb checkout", "lance checkout"]),
        settle=SETTLE,
    )
    def restore(self, data: st.DataObject, how: str, settle: bool) -> None:
        """Make an older (non-empty) version the latest: by number or tag, or by a checkout
        of it (lancedb's table or a Lance dataset) and a restore of the checked-out version."""
        versions = [v.version for v in self.table.versions() if v.version != self.table.version]
        versions = [v for v in versions if self._rows_at(v)]
        if not versions:
            return
        v = data.draw(st.sampled_from(versions))
        if how == "number":
            self.table.restore(v)
        elif how == "tag":
            self.table.tag("back", v)
            self.table.restore("back")
        elif how == "lancedb checkout":
            self.table.lance_table.checkout(v)
            self.table.lance_table.restore()
            self.table.refresh()
        else:
            lance.dataset(self.table.dataset_uri, version=v).restore()
            self.table.refresh()
        self._after(settle)

    @rule(how=st.sampled_from(["optimize", "compact", "compact and clean up"]), settle=SETTLE)
    def optimize(self, how: str, settle: bool) -> None:
        """Compaction: rows move to new fragments. Cleaning up deletes every older version,
        the one the live model is at included."""
        tbl = self.table.lance_table
        if how == "optimize":
            tbl.optimize()
        elif how == "compact":
            self.table.lance_table.to_lance().optimize.compact_files(
                target_rows_per_fragment=16, materialize_deletions_threshold=0.0
            )
        else:
            for tag in self.table.tags():  # a tagged version would stop the clean-up
                tbl.tags.delete(tag)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tbl.optimize(cleanup_older_than=timedelta(0))
        self.table.refresh()
        self._after(settle)

    @rule(settle=SETTLE)
    def add_column(self, settle: bool) -> None:
        self.columns_added += 1
        name = f"extra{self.columns_added}"
        self.table.lance_table.add_columns({name: "cast(1 as int)"})
        self.table.refresh()
        self._after(settle)

    @precondition(lambda self: self._extra_columns())
    @rule(data=st.data(), settle=SETTLE)
    def drop_column(self, data: st.DataObject, settle: bool) -> None:
        extra = self._extra_columns()
        self.table.lance_table.drop_columns([data.draw(st.sampled_from(extra))])
        self.table.refresh()
        self._after(settle)

    @rule(
        column=st.sampled_from([IMAGE_EMBEDDING, TEXT_EMBEDDING]),
        to=st.sampled_from(sorted(FLOATS)),
        settle=SETTLE,
    )
    def cast_embeddings(self, column: str, to: str, settle: bool) -> None:
        """A schema change that rewrites a column in place: the same fragments, new data
        files (to float16 the values change too)."""
        field = self.table.schema.field(column)
        if field.type.value_type == FLOATS[to]:
            return
        new_type = pa.list_(FLOATS[to], field.type.list_size)
        self.table.lance_table.alter_columns({"path": column, "data_type": new_type})
        self.table.refresh()
        self._after(settle)

    @rule(settle=SETTLE)
    def relabel_encoders(self, settle: bool) -> None:
        """Other encoder names in the schema metadata alone (no row rewritten)."""
        ds = self.table.lance_table.to_lance()
        meta = self.table.metadata
        for key in (META_IMAGE_ENCODER, META_TEXT_ENCODER):
            meta[key] = meta[key] + "'"
        ds.replace_schema_metadata(meta)
        self.table.refresh()
        self._after(settle)

    @rule(which=st.integers(0, len(ENCODERS) - 1), seed=SEEDS, settle=SETTLE)
    def reembed(self, which: int, seed: int, settle: bool) -> None:
        """The table overwritten with the same ids embedded by other encoders and dims."""
        batch = self._batch(self._ids(), seed, ENCODERS[which])
        db = lancedb.connect(self.dir)
        db.create_table(self.table.name, data=batch, mode="overwrite")
        self.table.refresh()
        self._after(settle)

    @rule(n=st.integers(1, 4), seed=SEEDS, settle=SETTLE)
    def empty_then_refill(self, n: int, seed: int, settle: bool) -> None:
        """An empty version is refused (`EmptyInputError`) and the old model kept."""
        before = self.live.snapshot
        self.table.remove(self._ids())
        with pytest.raises(EmptyInputError):
            self.live.refresh()
        assert self.live.snapshot is before
        self.table.upsert(self._batch(self._new_ids(n), seed))
        self._after(settle)

    def teardown(self) -> None:
        try:
            if self.live is not None:
                self._sync()  # whatever is still pending
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def machine(precision: Precision) -> type[LiveUpdates]:
    return type(f"LiveUpdates_{precision}", (LiveUpdates,), {"precision": precision})


COMMON = dict(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@pytest.mark.parametrize("precision", ["float32", "int8"])
def test_live_model_equals_a_fresh_load_after_any_changes(precision: Precision) -> None:
    """Bounded (and derandomized, so the default suite is deterministic)."""
    HOWS.clear()
    run_state_machine_as_test(
        machine(precision),
        settings=settings(max_examples=30, stateful_step_count=10, derandomize=True, **COMMON),
    )
    assert HOWS["incremental"] and HOWS["full"], HOWS  # both paths were exercised


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["float32", "int8"])
def test_live_model_equals_a_fresh_load_after_any_changes_long(precision: Precision) -> None:
    HOWS.clear()
    run_state_machine_as_test(
        machine(precision),
        settings=settings(max_examples=200, stateful_step_count=30, **COMMON),
    )
    assert HOWS["incremental"] and HOWS["full"], HOWS


# Regressions the machine found (each was served wrongly, or made refresh() raise, before).


@pytest.fixture
def table(tmp_path) -> AnchorTable:
    image_name, text_name, image_dim, text_dim = ENCODERS[0]
    t = AnchorTable.create_or_open(
        str(tmp_path / "db"), image_encoder=image_name, text_encoder=text_name,
        image_dim=image_dim, text_dim=text_dim,
    )  # fmt: skip
    t.upsert(make_batch(np.random.default_rng(0), 0, 40))
    return t


def refreshed(live: LiveModel, table: AnchorTable) -> str:
    """Refresh, compare with a fresh load, and say how the refresh was done."""
    assert live.refresh() and live.snapshot.version == table.version
    fresh = LiveModel(table.uri, k=K, p=P).snapshot.model
    assert_same_model(live.snapshot.model, fresh, np.random.default_rng(0))
    return live.snapshot.how


def test_a_restore_that_revives_old_rows_of_updated_ids_is_seen(table):
    """a0..a2 rewritten (their old rows deleted from fragment 0, new ones in fragment 1);
    the restore revives the old rows and drops fragment 1, and a delete of as many other
    rows keeps fragment 0's deletion count and the number of ids: only the ids of the
    fragment that left, still in the table, tell that the model's rows are stale."""
    before = table.version
    live = LiveModel(table.uri, k=K, p=P)
    table.upsert(make_batch(np.random.default_rng(1), 0, 3))
    assert refreshed(live, table) == "incremental"
    table.restore(before)
    table.remove(["a10", "a11", "a12"])
    assert refreshed(live, table) == "full"


def test_a_column_rewritten_in_place_is_reloaded(table):
    """alter_columns casts image_embedding in place (same fragments, new data files)."""
    live = LiveModel(table.uri, k=K, p=P)
    column = table.schema.field(IMAGE_EMBEDDING)
    new_type = pa.list_(pa.float16(), column.type.list_size)
    table.lance_table.alter_columns({"path": IMAGE_EMBEDDING, "data_type": new_type})
    assert refreshed(live, table) == "full"
    table.lance_table.add_columns({"extra": "cast(1 as int)"})  # other columns: no reload
    assert refreshed(live, table) == "incremental"


def test_a_cleaned_up_served_version_falls_back_to_a_full_load(table):
    live = LiveModel(table.uri, k=K, p=P)
    table.remove(["a0"])
    table.upsert(make_batch(np.random.default_rng(2), 40, 42))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table.lance_table.optimize(cleanup_older_than=timedelta(0))
    assert [v.version for v in table.versions()] == [table.version]
    assert refreshed(live, table) == "full"
