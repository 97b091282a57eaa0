import json
import pickle
import tarfile

import numpy as np
import pytest
from PIL import Image

from asif.errors import SettingsError
from asif.evaluation.benchmarks import limit_rows, load_benchmark, load_cifar, load_image_folder
from asif.evaluation.imagenet import clip_class_names
from asif.evaluation.templates import CIFAR_TEMPLATES, IMAGENET_TEMPLATES, PETS_TEMPLATES
from asif.model.zero_shot import DEFAULT_TEMPLATES
from tests.datasets.test_imagenet_val import write_devkit, write_images
from tests.datasets.test_pets import write_pets


def _batch(n: int, n_classes: int, label_key: bytes, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {
        b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        label_key: [int(x) for x in rng.integers(0, n_classes, n)],
    }


def _write(path, obj):
    path.write_bytes(pickle.dumps(obj))


@pytest.fixture
def cifar10_dir(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    names = [b"airplane", b"automobile", b"bird"]
    _write(folder / "batches.meta", {b"label_names": names})
    for i in range(1, 6):
        _write(folder / f"data_batch_{i}", _batch(4, 3, b"labels", i))
    _write(folder / "test_batch", _batch(6, 3, b"labels", 0))
    return tmp_path


def test_cifar10_folder_and_parent(cifar10_dir):
    test = load_cifar(cifar10_dir)
    assert test.name == "cifar10-test" and len(test) == 6
    assert test.class_names == ["airplane", "automobile", "bird"]
    assert test.images.shape == (6, 32, 32, 3) and test.images.dtype == np.uint8
    raw = pickle.loads((cifar10_dir / "cifar-10-batches-py" / "test_batch").read_bytes())
    np.testing.assert_array_equal(test.images[0, :, :, 0].reshape(-1), raw[b"data"][0, :1024])
    train = load_cifar(cifar10_dir / "cifar-10-batches-py", "train")
    assert len(train) == 20
    b = load_benchmark("cifar10", root=cifar10_dir, limit=3)
    assert b.templates == CIFAR_TEMPLATES and len(b) == 3


def test_cifar100_tar_gz(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    fine = [b"apple", b"aquarium_fish", b"maple_tree", b"zebra"]
    _write(folder / "meta", {b"fine_label_names": fine, b"coarse_label_names": [b"x"]})
    _write(folder / "train", _batch(8, 4, b"fine_labels", 1))
    _write(folder / "test", _batch(5, 4, b"fine_labels", 2))
    archive = tmp_path / "cifar-100-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="cifar-100-python")
    b = load_benchmark("cifar100", "test", archive)
    assert b.data.name == "cifar100-test" and len(b) == 5
    assert b.class_names == ["apple", "aquarium fish", "maple tree", "zebra"]
    assert len(load_benchmark("cifar100", "train", archive)) == 8


def test_cifar_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no CIFAR"):
        load_cifar(tmp_path)
    with pytest.raises(ValueError, match="needs root"):
        load_benchmark("cifar10")


def _images(root, classes, per_class=2):
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", (8, 8), (i * 40, 10, 10)).save(root / c / f"{i}.png")
    (root / classes[0] / "notes.txt").write_text("not an image")


def test_image_folder_names_and_mapping(tmp_path):
    _images(tmp_path / "val", ["n01440764", "n01443537"])
    data = load_image_folder(tmp_path, "val")
    assert data.class_names == ["n01440764", "n01443537"] and len(data) == 4
    assert list(data.labels) == [0, 0, 1, 1]
    mapping = tmp_path / "names.json"
    mapping.write_text(json.dumps({"n01440764": "tench", "n01443537": "goldfish"}))
    b = load_benchmark("imagenet", "val", tmp_path, class_names=str(mapping))
    assert b.class_names == ["tench", "goldfish"] and b.templates == IMAGENET_TEMPLATES
    assert b.key != load_benchmark("imagenet", "val", tmp_path).key
    assert str(b.data.images[0]).endswith("0.png")


def test_imagenet_folders_get_clip_names_by_default_wordnet_by_option(tmp_path):
    _images(tmp_path / "val", ["n01440764", "n01514668", "n02012849"], per_class=1)
    clip = load_benchmark("imagenet", "val", tmp_path)
    assert clip.class_names == ["tench", "rooster", "crane bird"]
    wordnet = load_benchmark("imagenet", "val", tmp_path, class_names="wordnet")
    assert wordnet.class_names == ["tench", "cock", "crane bird"]
    assert wordnet.key != clip.key
    _images(tmp_path / "v2", ["0", "7", "517"], per_class=1)
    v2 = load_benchmark("imagenet-v2", root=tmp_path / "v2")
    assert v2.class_names == ["tench", "rooster", "construction crane"]
    v2_wordnet = load_benchmark("imagenet-v2", root=tmp_path / "v2", class_names="wordnet")
    assert v2_wordnet.class_names == ["tench", "cock", "construction crane"]
    assert v2_wordnet.key != v2.key


def test_imagenet_flat_validation_images_with_the_devkit(tmp_path):
    synsets = [(1, "n01514668", 0), (2, "n01440764", 0), (3, "n01494475", 0), (4, "n00001740", 3)]
    kit = write_devkit(tmp_path / "kit" / "ILSVRC2012_devkit_t12", synsets)
    archive = tmp_path / "ILSVRC2012_devkit_t12.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(kit, arcname="ILSVRC2012_devkit_t12")
    write_images(tmp_path / "imagenet" / "ILSVRC2012_img_val", range(1, 7))
    b = load_benchmark("imagenet", "val", tmp_path / "imagenet", devkit=archive)
    # ground truth IDs 3 1 2 2 3 1 -> wnids sorted: n01440764 (0), n01494475 (1), n01514668 (2)
    assert list(b.labels) == [1, 2, 0, 0, 1, 2] and b.templates == IMAGENET_TEMPLATES
    assert b.class_names == ["tench", "hammerhead shark", "rooster"]
    found = load_benchmark("imagenet", root=tmp_path / "imagenet", class_names="wordnet")
    assert found.class_names == ["tench", "hammerhead", "cock"]  # the devkit next to root
    assert list(found.labels) == list(b.labels)


def _pets_breeds(root, folders):
    for folder in folders:
        (root / folder).mkdir(parents=True)
        Image.new("RGB", (4, 4)).save(root / folder / "1.jpg")


def test_pets_oxford_files_and_breed_folders_with_clip_names(tmp_path):
    clip = clip_class_names("pets")
    standard = [(name.replace(" ", "_").lower() + "_1", i + 1, 1, 1) for i, name in enumerate(clip)]
    write_pets(tmp_path / "oxford-iiit-pet", standard[::-1], standard[:2])
    b = load_benchmark("pets", root=tmp_path)
    assert b.class_names == clip and list(b.labels) == list(range(36, -1, -1))
    assert b.templates == PETS_TEMPLATES
    train = load_benchmark("pets", "train", tmp_path / "oxford-iiit-pet")
    assert train.class_names == ["Abyssinian", "American Bulldog"]  # not the 37: as derived
    _pets_breeds(tmp_path / "breeds", [n.replace(" ", "_").lower() for n in clip])
    folders = load_benchmark("pets", root=tmp_path / "breeds")
    assert sorted(folders.class_names) == sorted(clip)
    assert folders.class_names[0] == "Abyssinian" and "German Shorthaired" in folders.class_names
    _pets_breeds(tmp_path / "few", ["great_pyrenees", "pug"])
    assert load_benchmark("pets", root=tmp_path / "few").class_names == ["great pyrenees", "pug"]
    named = load_benchmark("pets", root=tmp_path / "few", class_names={"pug": "a pug dog"})
    assert named.class_names == ["great_pyrenees", "a pug dog"]


def test_image_folder_numeric_classes_like_imagenet_v2(tmp_path):
    _images(tmp_path, ["0", "2", "10"], per_class=1)
    data = load_image_folder(tmp_path, class_names=list("abcdefghijk"))
    assert data.class_names == ["a", "c", "k"]
    plain = load_benchmark("image-folder", root=tmp_path)
    assert plain.class_names == ["0", "2", "10"] and plain.templates == DEFAULT_TEMPLATES


def test_torchvision_dataset_from_local_root(tmp_path):
    _images(tmp_path, ["cat", "dog"], per_class=3)
    b = load_benchmark("torchvision:ImageFolder", root=tmp_path, limit=4)
    assert b.class_names == ["cat", "dog"] and len(b) == 4
    assert list(np.bincount(b.labels)) == [2, 2]
    assert b.data.images[0].size == (8, 8)
    with pytest.raises(ValueError, match="no dataset"):
        load_benchmark("torchvision:NoSuchSet", root=tmp_path)


def test_shipped_sets_and_limits():
    fm = load_benchmark("fashion-mnist", limit=50)
    assert len(fm) == 50 and list(np.bincount(fm.labels)) == [5] * 10
    assert fm.data.images.shape == (50, 28, 28)
    assert fm.key == load_benchmark("fashion-mnist", limit=50).key
    assert fm.key != load_benchmark("fashion-mnist", limit=50, seed=1).key
    assert fm.templates == DEFAULT_TEMPLATES  # the library's default prompts, not a copy
    train, test = load_benchmark("digits", "train"), load_benchmark("digits", "test")
    assert len(train) + len(test) == 1797 and test.class_names[0] == "zero"
    with pytest.raises(ValueError, match="unknown benchmark"):
        load_benchmark("nope")


def test_limit_rows_is_balanced_and_sorted():
    labels = np.array([0] * 50 + [1] * 5 + [2] * 20)
    rows = limit_rows(labels, 12)
    assert np.all(np.diff(rows) > 0) and list(np.bincount(labels[rows])) == [4, 4, 4]
    assert list(np.bincount(labels[limit_rows(labels, 30)])) == [13, 5, 12]


@pytest.mark.parametrize("limit", [0, -5, 2.5])
def test_a_limit_must_be_a_positive_integer(limit):
    """-5 kept all but 5 images and 0 an empty set, silently."""
    with pytest.raises(SettingsError, match="limit must be a positive integer"):
        load_benchmark("digits", limit=limit)
