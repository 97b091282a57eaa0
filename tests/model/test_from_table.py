import numpy as np
import pytest

from asif.errors import AsifError, EncoderMismatchError
from asif.model import AsifModel, ModelSettings
from asif.model.from_table import model_from_table
from asif.store.batch import build_anchor_batch
from asif.store.table import AnchorTable
from tests.dense_reference import random_unit


def test_model_from_anchor_table(tmp_path):
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
    model = model_from_table(table, precision="int8", settings=ModelSettings("i", "t", k=7))
    assert len(model) == 50 and model.settings.k == 7 and model.scan.precision == "int8"
    assert model_from_table(table).settings == ModelSettings("i", "t")
    with pytest.raises(EncoderMismatchError, match="embedded with 'i'/'t'"):
        model_from_table(table, settings=ModelSettings("other", "t"))
    ref = AsifModel.from_embeddings(img, txt, caps, ModelSettings("i", "t", k=7), urls=urls)
    order = [model.anchors.ids.index(a) for a in ref.anchors.ids]
    assert [model.anchors.captions[i] for i in order] == caps
