import numpy as np
import pytest

from asif.errors import AsifError
from asif.model import AsifModel
from tests.dense_reference import random_unit


@pytest.mark.parametrize("precision", ["float32", "float16", "int8"])
def test_save_load_round_trip(tmp_path, precision):
    rng = np.random.default_rng(0)
    model = AsifModel.from_embeddings(
        random_unit(rng, 120, 12),
        random_unit(rng, 120, 6),
        [f"c{i}" for i in range(120)],
        urls=[None] * 60 + [f"http://x/{i}" for i in range(60)],
        image_encoder_name="i",
        text_encoder_name="t",
        k=17,
        p=4.0,
        chunk_size=50,
        precision=precision,
    )
    path = model.save(tmp_path / "m")
    loaded = AsifModel.load(path)
    assert (loaded.k, loaded.p, loaded.chunk_size) == (17, 4.0, 50)
    assert loaded.image_encoder_name == "i" and loaded.text_encoder_name == "t"
    assert loaded.anchors.ids == model.anchors.ids
    assert loaded.anchors.urls == model.anchors.urls
    assert loaded.anchors.image.precision == precision
    q = random_unit(rng, 5, 12)
    np.testing.assert_array_equal(
        loaded.image_relative(q).to_dense(), model.image_relative(q).to_dense()
    )


def test_save_replaces_atomically_and_load_rejects_other_folders(tmp_path):
    rng = np.random.default_rng(1)
    kw = dict(image_encoder_name="i", text_encoder_name="t")
    a = AsifModel.from_embeddings(
        random_unit(rng, 5, 4), random_unit(rng, 5, 4), list("abcde"), **kw
    )
    b = AsifModel.from_embeddings(random_unit(rng, 3, 4), random_unit(rng, 3, 4), list("xyz"), **kw)
    a.save(tmp_path / "m")
    b.save(tmp_path / "m")
    assert AsifModel.load(tmp_path / "m").anchors.captions == list("xyz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
    with pytest.raises(AsifError, match="not a saved ASIF model"):
        AsifModel.load(tmp_path)
