"""The demo end to end with the real shipped encoders: anchors from Fashion-MNIST, zero-shot on
held-out images, the anchor pairs written as the build flow's folder input."""

import numpy as np
import pytest
from PIL import Image

from asif.datasets import fashion_mnist
from asif.demo import demo_anchors, demo_data, write_pairs_folder
from asif.model import AsifModel
from asif.model.settings import ModelSettings
from asif.pipeline.folders import folder_pairs
from tests.demo_run import ANCHORS_PER_CLASS, demo_result


@pytest.fixture(scope="module")
def demo():
    return demo_result()


def test_zero_shot_accuracy_is_far_above_chance(demo):
    print(demo.report())
    assert demo.n_anchors == 400 and len(demo.targets) == 200
    assert demo.accuracy >= 0.45, demo.report()  # chance is 10%
    assert demo.explanation.anchors and demo.explanation.label in demo.prediction.class_names


def test_the_demo_model_has_the_default_settings(demo):
    settings = AsifModel.load(demo.model_path).settings
    assert settings == ModelSettings(settings.image_encoder, settings.text_encoder)


def test_demo_anchors_are_the_pairs_the_demo_wrote(demo):  # benchmarks/choose_kp.py uses them
    anchors, captions = demo_anchors(demo_data()[0], ANCHORS_PER_CLASS)
    pairs, _ = folder_pairs(demo.pairs_dir)
    assert sorted(pairs["caption"].to_pylist()) == sorted(captions)
    assert len(anchors) == demo.n_anchors


def test_anchor_pairs_are_written_as_the_flow_s_folder_input(demo):
    pairs, _ = folder_pairs(demo.pairs_dir)
    assert pairs.num_rows == demo.n_anchors
    with Image.open(demo.pairs_dir / "00000.png") as image:
        assert image.size == (28, 28)
    captions = set(pairs["caption"].to_pylist())
    assert any(c.endswith("of a trouser.") for c in captions)
    assert f"url_list={demo.pairs_dir}" in demo.report()


def test_pairs_never_go_into_someone_else_s_folder(tmp_path):
    mine = tmp_path / "photos"
    mine.mkdir()
    (mine / "holiday.png").write_bytes(b"not ours")
    data = fashion_mnist("test").subset(np.arange(2))
    with pytest.raises(FileExistsError, match="photos is not empty"):
        write_pairs_folder(data, ["a", "b"], mine)
    assert (mine / "holiday.png").read_bytes() == b"not ours"
    ours = write_pairs_folder(data, ["a", "b"], tmp_path / "pairs")
    write_pairs_folder(data.subset(np.arange(1)), ["c"], ours)  # a later demo replaces them
    assert sorted(p.name for p in ours.iterdir()) == [".asif-demo-pairs", "00000.png", "00000.txt"]
