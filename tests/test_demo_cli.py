"""End to end with the real shipped encoders: anchors from Fashion-MNIST, zero-shot on held-out
images, then the `asif` command line on the saved model."""

import json

import numpy as np
import pytest
from PIL import Image

from asif.cli import main
from asif.datasets import fashion_mnist
from asif.demo import run_demo, write_pairs_folder
from asif.pipeline.folders import folder_pairs


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    return run_demo(
        out / "model", out / "pairs", anchors_per_class=40, test_per_class=20,
        image_encoder="efficientnet-lite0", k=30, progress=False,
    )  # fmt: skip


def test_zero_shot_accuracy_is_far_above_chance(demo):
    print(demo.report())
    assert demo.n_anchors == 400 and len(demo.targets) == 200
    assert demo.accuracy >= 0.45, demo.report()  # chance is 10%
    assert demo.explanation.anchors and demo.explanation.label in demo.prediction.class_names


def test_anchor_pairs_are_written_as_the_flow_s_folder_input(demo):
    pairs, _ = folder_pairs(demo.pairs_dir)
    assert pairs.num_rows == demo.n_anchors
    with Image.open(demo.pairs_dir / "00000.png") as image:
        assert image.size == (28, 28)
    captions = set(pairs["caption"].to_pylist())
    assert any(c.endswith("of a trouser.") for c in captions)
    assert f"url_list={demo.pairs_dir}" in demo.report()


def test_pairs_never_go_into_someone_else_s_folder(tmp_path, capsys):
    mine = tmp_path / "photos"
    mine.mkdir()
    (mine / "holiday.png").write_bytes(b"not ours")
    data = fashion_mnist("test").subset(np.arange(2))
    with pytest.raises(FileExistsError, match="photos is not empty"):
        write_pairs_folder(data, ["a", "b"], mine)
    assert main(["demo", "--pairs-dir", str(mine), "--output", str(tmp_path / "model")]) == 2
    assert "photos is not empty" in capsys.readouterr().err
    assert (mine / "holiday.png").read_bytes() == b"not ours"
    ours = write_pairs_folder(data, ["a", "b"], tmp_path / "pairs")
    write_pairs_folder(data.subset(np.arange(1)), ["c"], ours)  # a later demo replaces them
    assert sorted(p.name for p in ours.iterdir()) == [".asif-demo-pairs", "00000.png", "00000.txt"]


@pytest.fixture(scope="module")
def image_files(tmp_path_factory):
    test = fashion_mnist("test")
    folder = tmp_path_factory.mktemp("images")
    paths = []
    for i in (0, 1, 2):  # ankle boot, pullover, trouser
        path = folder / f"item{i}.png"
        Image.fromarray(test.images[i]).save(path)
        paths.append(str(path))
    return paths, [test.class_names[c] for c in test.labels[:3]]


def test_cli_classify_and_explain(demo, image_files, capsys):
    paths, truth = image_files
    labels = ",".join(demo.prediction.class_names)
    assert main(["classify", *paths, "--model", str(demo.model_path), "--labels", labels,
                 "--json"]) == 0  # fmt: skip
    rows = json.loads(capsys.readouterr().out)
    assert [r["image"] for r in rows] == paths
    assert sum(r["label"] == t for r, t in zip(rows, truth, strict=True)) >= 2
    assert main(["explain", paths[0], "--model", str(demo.model_path), "--labels", labels,
                 "--top", "3"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "because of" in out and out.count("fashion-mnist-train#") == 3


def test_cli_unknown_threshold_and_table(demo, image_files, capsys):
    paths, _ = image_files
    args = ["classify", *paths, "--model", str(demo.model_path), "--labels", "bag,sneaker"]
    assert main([*args, "--threshold", "2.0"]) == 0  # scores never reach 2
    out = capsys.readouterr().out
    assert out.count("unknown") == 3 and out.splitlines()[0].split()[:3] == [
        "image",
        "label",
        "score",
    ]


def test_cli_errors_are_clear(demo, tmp_path, capsys):
    bad = tmp_path / "not-an-image.jpg"
    bad.write_text("hello")
    assert main(["classify", str(bad), "--model", str(demo.model_path), "--labels", "a,b"]) == 2
    assert "not-an-image.jpg" in capsys.readouterr().err
    assert main(["classify", str(bad), "--model", str(tmp_path), "--labels", "a"]) == 2
    assert "not a saved ASIF model" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["classify", str(bad), "--labels", " , "])
    assert "at least one class name" in capsys.readouterr().err


def test_cli_info(demo, capsys):
    assert main(["info", "--model", str(demo.model_path)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["n_anchors"] == 400 and info["image_encoder"] == "efficientnet-lite0"
    assert np.isclose(info["p"], 8.0)
