"""An anchor table written by the code before the re-layout (tests/fixtures/legacy, at 4cd5932)
opens with today's `AnchorTable`: same versions, rows, tag and arrays, and takes new writes."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from asif.store.changes import changed_rows
from asif.store.ids import anchor_id
from asif.store.table import AnchorTable
from tests.store.rows import make_batch

LEGACY = Path(__file__).parents[1] / "fixtures" / "legacy" / "lancedb"


@pytest.fixture
def legacy(tmp_path) -> AnchorTable:
    shutil.copytree(LEGACY, tmp_path / "lancedb")
    return AnchorTable.open(str(tmp_path / "lancedb"))


def test_versions_rows_and_tag(legacy):
    assert legacy.version == 4 and len(legacy) == 11 and not legacy.read_only
    rows = [(v.version, v.num_rows) for v in legacy.versions()]
    assert rows == [(1, 0), (2, 8), (3, 12), (4, 11)]
    assert legacy.tags() == {"first": 2}
    first = legacy.at("first")
    assert first.read_only and first.version == 2 and len(first) == 8
    diff = changed_rows(legacy, "first")
    assert (len(diff.added), len(diff.removed)) == (4, 1)


def test_identity_and_arrays(legacy):
    assert (legacy.image_encoder, legacy.text_encoder) == ("legacy-image", "legacy-text")
    assert (legacy.image_dim, legacy.text_dim) == (8, 6)
    assert legacy.metadata["asif.schema_version"] == "1"
    arrays = legacy.arrays()
    assert len(arrays) == 11 and arrays.version == 4
    assert arrays.image.shape == (11, 8) and arrays.text.shape == (11, 6)
    assert arrays.image.dtype == arrays.text.dtype == np.float32
    assert (arrays.image_encoder, arrays.text_encoder) == ("legacy-image", "legacy-text")
    assert sorted(arrays.captions) == sorted(f"caption {i}" for i in range(1, 12))
    pairs = zip(arrays.urls, arrays.captions, strict=True)
    assert arrays.ids == [anchor_id(u, c) for u, c in pairs]
    assert sorted(legacy.at("first").arrays().captions) == [f"caption {i}" for i in range(8)]


def test_takes_new_writes(legacy):
    batch = make_batch(100, 2, di=8, dt=6, encoders=("legacy-image", "legacy-text"))
    assert legacy.upsert(batch).inserted == 2
    assert legacy.version == 5 and len(legacy) == 13
