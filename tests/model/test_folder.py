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


def test_model_from_anchor_table(tmp_path):
    from asif.model.folder import model_from_table
    from asif.store.table import AnchorTable, build_anchor_batch

    rng = np.random.default_rng(2)
    img, txt = random_unit(rng, 50, 8), random_unit(rng, 50, 4)
    table = AnchorTable.create_or_open(
        str(tmp_path / "db"), image_encoder="i", text_encoder="t", image_dim=8, text_dim=4
    )
    with pytest.raises(AsifError, match="no rows"):
        model_from_table(table)
    urls = [f"http://127.0.0.1/{i}.png" for i in range(50)]
    caps = [f"c{i}" for i in range(50)]
    table.upsert(build_anchor_batch(
        urls=urls, captions=caps, widths=[10] * 50, heights=[10] * 50,
        image_embeddings=img, text_embeddings=txt,
    ))  # fmt: skip
    model = model_from_table(table, precision="int8", k=7)
    assert len(model) == 50 and model.k == 7 and model.anchors.image.precision == "int8"
    assert model.image_encoder_name == "i" and model.text_encoder_name == "t"
    ref = AsifModel.from_embeddings(
        img, txt, caps, urls=urls, image_encoder_name="i", text_encoder_name="t", k=7
    )
    order = [model.anchors.ids.index(a) for a in ref.anchors.ids]
    assert [model.anchors.captions[i] for i in order] == caps
