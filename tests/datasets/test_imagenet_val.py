import tarfile

import numpy as np
import pytest
import scipy.io
from PIL import Image

from asif.datasets.imagenet_val import load_imagenet_val
from asif.errors import DatasetError

# ILSVRC2012_ID order (as in meta.mat) differs from sorted-wnid order, the labels' order; the
# last synset has children, so it is no class.
SYNSETS = [(1, "n01514668", 0), (2, "n01440764", 0), (3, "n01494475", 0), (4, "n00001740", 3)]
WNIDS = ["n01440764", "n01494475", "n01514668"]  # labels 0, 1, 2
TRUTH = [3, 1, 2, 2, 3, 1]  # ILSVRC2012_ID of images 1..6
LABELS = [1, 2, 0, 0, 1, 2]  # their class indices


def write_devkit(folder, synsets=SYNSETS, truth=TRUTH):
    """A devkit with meta.mat in the real struct layout and the ground truth, at `folder`."""
    fields = ["ILSVRC2012_ID", "WNID", "words", "gloss", "num_children", "children"]
    rows = [
        (i, wnid, f"words {i}", "gloss", n, np.arange(n, dtype=np.uint16) + 5)
        for i, wnid, n in synsets
    ]
    table = np.array(rows, dtype=[(f, "O") for f in fields]).reshape(-1, 1)
    (folder / "data").mkdir(parents=True)
    scipy.io.savemat(folder / "data" / "meta.mat", {"synsets": table})
    lines = "".join(f"{t}\n" for t in truth)
    (folder / "data" / "ILSVRC2012_validation_ground_truth.txt").write_text(lines)
    return folder


def write_images(folder, numbers):
    folder.mkdir(parents=True, exist_ok=True)
    for n in numbers:
        Image.new("RGB", (4, 4), (n * 30, 0, 0)).save(folder / f"ILSVRC2012_val_{n:08d}.JPEG")
    (folder / "LOC_val_solution.csv").write_text("not an image")
    return folder


def test_flat_images_labelled_in_sorted_wnid_order(tmp_path):
    write_devkit(tmp_path / "ILSVRC2012_devkit_t12")
    write_images(tmp_path, [5, 1, 2, 4])  # a subset, found by number
    data = load_imagenet_val(tmp_path)
    assert data.class_names == WNIDS
    assert [p.name for p in data.images] == [f"ILSVRC2012_val_{n:08d}.JPEG" for n in (1, 2, 4, 5)]
    assert list(data.labels) == [LABELS[n - 1] for n in (1, 2, 4, 5)]


@pytest.mark.parametrize("images", ["ILSVRC2012_img_val", "val"])
def test_tar_gz_devkit_next_to_root_and_image_subfolders(tmp_path, images):
    kit = write_devkit(tmp_path / "unpacked" / "ILSVRC2012_devkit_t12")
    with tarfile.open(tmp_path / "ILSVRC2012_devkit_t12.tar.gz", "w:gz") as tar:
        tar.add(kit, arcname="ILSVRC2012_devkit_t12")
    root = tmp_path / "imagenet"
    write_images(root / images, range(1, 7))
    data = load_imagenet_val(root, tmp_path / "ILSVRC2012_devkit_t12.tar.gz")
    assert list(data.labels) == LABELS and data.class_names == WNIDS
    (tmp_path / "imagenet" / "ILSVRC2012_devkit_t12.tar.gz").symlink_to(
        tmp_path / "ILSVRC2012_devkit_t12.tar.gz"
    )
    assert list(load_imagenet_val(root).labels) == LABELS


def test_devkit_next_to_root_as_folder(tmp_path):
    write_devkit(tmp_path / "ILSVRC2012_devkit_t12")
    write_images(tmp_path / "val_images", [6])
    data = load_imagenet_val(tmp_path / "val_images")
    assert list(data.labels) == [LABELS[5]]


def test_errors_name_the_file_and_entry(tmp_path):
    write_images(tmp_path / "root", [1, 9])
    with pytest.raises(DatasetError, match="no ImageNet devkit.*pass devkit="):
        load_imagenet_val(tmp_path / "root")
    write_devkit(tmp_path / "root" / "ILSVRC2012_devkit_t12")
    with pytest.raises(
        DatasetError, match=r"1 image\(s\).*beyond the 6 lines.*ILSVRC2012_val_00000009"
    ):
        load_imagenet_val(tmp_path / "root")
    truth = (
        tmp_path
        / "root"
        / "ILSVRC2012_devkit_t12"
        / "data"
        / "ILSVRC2012_validation_ground_truth.txt"
    )
    truth.write_text("3\n1\nx\n")
    with pytest.raises(DatasetError, match=r"ground_truth.txt line 3: 'x'"):
        load_imagenet_val(tmp_path / "root")
    truth.write_text("3\n4\n")  # 4 has children: not a class
    with pytest.raises(DatasetError, match=r"ground_truth.txt line 2: '4' is not"):
        load_imagenet_val(tmp_path / "root")
    (tmp_path / "root" / "ILSVRC2012_devkit_t12" / "data" / "meta.mat").unlink()
    with pytest.raises(DatasetError, match="meta.mat not found"):
        load_imagenet_val(tmp_path / "root")
    with pytest.raises(DatasetError, match="no ILSVRC2012_val_<n> images"):
        load_imagenet_val(tmp_path / "root" / "ILSVRC2012_devkit_t12")
    with pytest.raises(DatasetError, match="does not exist"):
        load_imagenet_val(tmp_path / "root", tmp_path / "nowhere")


def test_tar_gz_without_meta_and_a_bad_meta(tmp_path):
    kit = tmp_path / "kit"
    (kit / "data").mkdir(parents=True)
    (kit / "data" / "ILSVRC2012_validation_ground_truth.txt").write_text("1\n")
    with tarfile.open(tmp_path / "kit.tar.gz", "w:gz") as tar:
        tar.add(kit, arcname="ILSVRC2012_devkit_t12")
    write_images(tmp_path / "images", [1])
    with pytest.raises(DatasetError, match="kit.tar.gz has no member .*data/meta.mat"):
        load_imagenet_val(tmp_path / "images", tmp_path / "kit.tar.gz")
    (tmp_path / "broken.tar.gz").write_bytes(b"not gzip")
    with pytest.raises(DatasetError, match="broken.tar.gz is not a readable devkit"):
        load_imagenet_val(tmp_path / "images", tmp_path / "broken.tar.gz")
    scipy.io.savemat(kit / "data" / "meta.mat", {"other": np.zeros(2)})
    with pytest.raises(DatasetError, match="meta.mat is not the devkit's synset table"):
        load_imagenet_val(tmp_path / "images", kit)
