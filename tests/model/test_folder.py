import subprocess
import sys

import numpy as np
import pytest

from asif.errors import AsifError
from asif.model import AsifModel, ModelSettings
from tests.dense_reference import random_unit


@pytest.mark.parametrize("precision", ["float32", "float16", "int8"])
def test_save_load_round_trip(tmp_path, precision):
    rng = np.random.default_rng(0)
    model = AsifModel.from_embeddings(
        random_unit(rng, 120, 12),
        random_unit(rng, 120, 6),
        [f"c{i}" for i in range(120)],
        ModelSettings("i", "t", k=17, p=4.0),
        urls=[None] * 60 + [f"http://x/{i}" for i in range(60)],
        chunk_size=50,
        precision=precision,
    )
    path = model.save(tmp_path / "m")
    loaded = AsifModel.load(path)
    assert loaded.settings == ModelSettings("i", "t", k=17, p=4.0)
    assert loaded.scan.chunk_size == 50
    assert loaded.anchors.ids == model.anchors.ids
    assert loaded.anchors.urls == model.anchors.urls
    assert loaded.scan.precision == precision
    q = random_unit(rng, 5, 12)
    np.testing.assert_array_equal(
        loaded.image_relative(q).to_dense(), model.image_relative(q).to_dense()
    )


def test_save_replaces_atomically_and_load_rejects_other_folders(tmp_path):
    rng = np.random.default_rng(1)
    settings = ModelSettings("i", "t")
    a = AsifModel.from_embeddings(
        random_unit(rng, 5, 4), random_unit(rng, 5, 4), list("abcde"), settings
    )
    b = AsifModel.from_embeddings(
        random_unit(rng, 3, 4), random_unit(rng, 3, 4), list("xyz"), settings
    )
    a.save(tmp_path / "m")
    b.save(tmp_path / "m")
    assert AsifModel.load(tmp_path / "m").anchors.captions == list("xyz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
    with pytest.raises(AsifError, match="not a saved ASIF model"):
        AsifModel.load(tmp_path)


def test_saving_a_folder_does_not_import_lancedb(tmp_path):
    code = (
        "import sys, numpy as np; from asif.model import AsifModel, ModelSettings; "
        "s = ModelSettings('i', 't'); "
        "m = AsifModel.from_embeddings(np.eye(3), np.eye(3), list('abc'), s); "
        f"m.save({str(tmp_path / 'm')!r}); AsifModel.load({str(tmp_path / 'm')!r}); "
        "assert 'lancedb' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_corrupt_settings_are_a_clear_error(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "asif.json").write_text("{not json")
    with pytest.raises(AsifError, match="not valid JSON"):
        AsifModel.load(folder)
    (folder / "asif.json").write_text('{"format": "asif-model", "format_version": 99}')
    with pytest.raises(AsifError, match="version 99"):
        AsifModel.load(folder)
