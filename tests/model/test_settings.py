import numpy as np
import pytest

from asif.errors import SettingsError
from asif.model import AsifModel, ModelSettings
from asif.model.settings import DEFAULT_K, DEFAULT_P
from tests.dense_reference import random_unit


def test_defaults_and_replace():
    s = ModelSettings("i", "t")
    assert (s.k, s.p) == (DEFAULT_K, DEFAULT_P)
    t = s.replace(k=np.int64(7), p=2)
    assert (t.k, t.p, type(t.k), type(t.p)) == (7, 2.0, int, float)
    assert s.k == DEFAULT_K  # unchanged: settings are values
    with pytest.raises(AttributeError):
        s.k = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    "bad", [dict(k=0), dict(k=True), dict(k=2.5), dict(p=0), dict(p=-1), dict(p=float("nan")),
            dict(p=65), dict(p="8")],
)  # fmt: skip
def test_out_of_range_settings_are_refused(bad):
    with pytest.raises(SettingsError, match=next(iter(bad))):
        ModelSettings("i", "t", **bad)


def test_with_settings_shares_anchors_and_leaves_the_model_alone():
    rng = np.random.default_rng(0)
    model = AsifModel.from_embeddings(
        random_unit(rng, 50, 8), random_unit(rng, 50, 4), [str(i) for i in range(50)],
        ModelSettings("i", "t", k=40),
    )  # fmt: skip
    small = model.with_settings(k=5)
    assert small.scan is model.scan and small.anchors is model.anchors
    assert (model.settings.k, small.settings.k) == (40, 5)
    assert small.image_relative(random_unit(rng, 2, 8)).indices.shape == (2, 5)
    with pytest.raises(SettingsError):
        model.with_settings(p=0)
