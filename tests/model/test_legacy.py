"""Model folders and anchor tables written by the code before the re-layout still load and
give the answers they gave (tests/fixtures/legacy, written at 4cd5932)."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from asif.model import AsifModel, ModelSettings
from asif.model.from_table import model_from_table
from asif.store.table import AnchorTable

LEGACY = Path(__file__).parents[1] / "fixtures" / "legacy"
SETTINGS = ModelSettings("legacy-image", "legacy-text", k=5, p=3.0)


def scores(model: AsifModel) -> np.ndarray:
    prompts = np.load(LEGACY / "prompts.npy")
    clf = model.zero_shot_classifier(["a", "b"], ["x {}", "y {}"], "max", prompts)
    return model.classify_embeddings(np.load(LEGACY / "queries.npy"), clf).scores


@pytest.mark.parametrize("precision", ["float32", "int8"])
def test_legacy_model_folder(precision):
    model = AsifModel.load(LEGACY / f"model-{precision}")
    assert model.settings == SETTINGS and model.scan.chunk_size == 4
    assert len(model) == 12 and model.scan.precision == precision
    np.testing.assert_allclose(
        scores(model), np.load(LEGACY / f"scores-{precision}.npy"), atol=1e-6
    )


def test_legacy_anchor_table(tmp_path):
    shutil.copytree(LEGACY / "lancedb", tmp_path / "lancedb")
    table = AnchorTable.open(str(tmp_path / "lancedb"))
    assert table.version == 4 and len(table) == 11
    model = model_from_table(table, settings=SETTINGS, chunk_size=4)
    np.testing.assert_allclose(scores(model), np.load(LEGACY / "scores-table.npy"), atol=1e-6)
    assert len(model_from_table(table.at("first"))) == 8
