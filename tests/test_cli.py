"""The `asif` command line on the model the demo saved: classify, explain, info, and bad input
turned into one line on stderr and exit status 2."""

import json

import numpy as np
import pytest
from PIL import Image

from asif.cli import build_parser, main
from asif.datasets import fashion_mnist
from asif.model.settings import DEFAULT_K, DEFAULT_P
from tests.demo_run import IMAGE_ENCODER, demo_result


@pytest.fixture(scope="module")
def demo():
    return demo_result()


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


def test_settings_default_to_the_model_s_as_in_serve():
    parser = build_parser()
    demo = parser.parse_args(["demo"])
    classify = parser.parse_args(["classify", "x.png", "--labels", "a"])
    serve = parser.parse_args(["serve", "--table", "db"])
    assert demo.k is None and classify.k is None  # None: the model's own (default) k
    assert (serve.k, serve.p) == (DEFAULT_K, DEFAULT_P)


def test_cli_classify_and_explain(demo, image_files, capsys):
    paths, truth = image_files
    labels = ",".join(demo.prediction.class_names)
    assert main(["classify", *paths, "--model", str(demo.model_path), "--labels", labels,
                 "--json"]) == 0  # fmt: skip
    rows = json.loads(capsys.readouterr().out)
    assert [r["image"] for r in rows] == paths
    assert sum(r["label"] == t for r, t in zip(rows, truth, strict=True)) >= 2
    assert main(["explain", paths[0], "--model", str(demo.model_path), "--labels", labels,
                 "--top", "3", "--k", "20"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "because of" in out and out.count("fashion-mnist-train#") == 3


def test_cli_unknown_threshold_and_table(demo, image_files, capsys):
    paths, _ = image_files
    args = ["classify", *paths, "--model", str(demo.model_path), "--labels", "bag,sneaker"]
    assert main([*args, "--threshold", "2.0"]) == 0  # scores never reach 2
    out = capsys.readouterr().out
    assert out.count("unknown") == 3
    assert out.splitlines()[0].split()[:3] == ["image", "label", "score"]


@pytest.mark.parametrize(
    "options, message",
    [
        (["--labels", " , "], "labels are empty"),
        (["--labels", "a,,b"], "labels contain an empty class name"),
        (["--labels", "a,b", "--template", "a photo"], "must contain exactly one '{}'"),
        (["--labels", "a,b", "--template", "{0.__class__}"], "must contain exactly one '{}'"),
        (["--labels", "a,b", "--strategy", "median"], "strategy must be one of"),
        (["--labels", "a,b", "--k", "0"], "k must be a positive integer"),
    ],
)
def test_library_errors_are_one_line_and_status_2(demo, image_files, capsys, options, message):
    """The library refuses the input (an AsifError); the CLI only reports it."""
    command = ["classify", image_files[0][0], "--model", str(demo.model_path), *options]
    assert main(command) == 2
    err = capsys.readouterr().err
    assert err.startswith("asif classify: error: ") and message in err
    assert len(err.strip().splitlines()) == 1


def test_cli_file_errors_are_clear(demo, tmp_path, capsys):
    bad = tmp_path / "not-an-image.jpg"
    bad.write_text("hello")
    assert main(["classify", str(bad), "--model", str(demo.model_path), "--labels", "a,b"]) == 2
    assert "not-an-image.jpg" in capsys.readouterr().err
    assert main(["classify", str(bad), "--model", str(tmp_path), "--labels", "a"]) == 2
    assert "not a saved ASIF model" in capsys.readouterr().err
    assert main(["serve", "--table", str(tmp_path / "nowhere")]) == 2
    assert "no anchor table 'anchors'" in capsys.readouterr().err


def test_demo_refuses_someone_else_s_folder(tmp_path, capsys):
    mine = tmp_path / "photos"
    mine.mkdir()
    (mine / "holiday.png").write_bytes(b"not ours")
    assert main(["demo", "--pairs-dir", str(mine), "--output", str(tmp_path / "model")]) == 2
    assert "photos is not empty" in capsys.readouterr().err
    assert (mine / "holiday.png").read_bytes() == b"not ours"


def test_cli_info(demo, capsys):
    assert main(["info", "--model", str(demo.model_path)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["n_anchors"] == 400 and info["image_encoder"] == IMAGE_ENCODER
    assert info["k"] == DEFAULT_K and np.isclose(info["p"], DEFAULT_P)
