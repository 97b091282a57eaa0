import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from asif.datasets import (
    CaptionedImages,
    load_captioned,
    read_caption_folder,
    read_coco_captions,
    read_flickr_captions,
    read_karpathy,
)
from asif.datasets import captioned as captioned_module
from asif.errors import DatasetError


def _image(path: Path, shade: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 3), (shade, 80, 160)).save(path)
    return path


def _five(name: str) -> list[str]:
    return [f"{name} caption {k}" for k in range(5)]


def _karpathy_coco(root: Path) -> Path:
    """dataset_coco.json: two test images (one in val2014/), one train, one restval."""
    entries = [
        ("val2014", "COCO_val2014_1.jpg", "test"),
        ("train2014", "COCO_train2014_2.jpg", "train"),
        ("val2014", "COCO_val2014_3.jpg", "restval"),
        ("val2014", "COCO_val2014_4.jpg", "test"),
    ]
    images = []
    for i, (folder, name, split) in enumerate(entries):
        _image(root / folder / name, i)
        sentences = [{"raw": c, "tokens": c.split()} for c in _five(name)]
        images.append(
            {"filepath": folder, "filename": name, "split": split, "sentences": sentences}
        )
    images[0]["sentences"][1]["raw"] = "  padded caption \n"
    path = root / "dataset_coco.json"
    path.write_text(json.dumps({"images": images, "dataset": "coco"}))
    return path


def test_karpathy_coco_test_split(tmp_path):
    path = _karpathy_coco(tmp_path)
    data = read_karpathy(path, tmp_path)
    assert data.name == "coco-test"
    assert data.images == [
        tmp_path / "val2014" / "COCO_val2014_1.jpg",
        tmp_path / "val2014" / "COCO_val2014_4.jpg",
    ]
    first = _five("COCO_val2014_1.jpg")
    first[1] = "padded caption"
    assert data.captions == first + _five("COCO_val2014_4.jpg")
    assert data.caption_image.dtype == np.int64
    assert data.caption_image.tolist() == [0] * 5 + [1] * 5
    assert len(data) == 2
    assert load_captioned(tmp_path).captions == data.captions


def test_karpathy_split_selection(tmp_path):
    _karpathy_coco(tmp_path)
    train = load_captioned(tmp_path, split="train")
    assert train.images == [tmp_path / "train2014" / "COCO_train2014_2.jpg"]
    assert train.name == "coco-train"
    restval = load_captioned(tmp_path, split="restval")
    assert restval.captions == _five("COCO_val2014_3.jpg")


def test_karpathy_flickr_without_filepath(tmp_path):
    images = []
    for i in range(3):
        _image(tmp_path / f"{i}.jpg", i)
        sentences = [{"raw": c} for c in _five(f"{i}.jpg")]
        images.append({"filename": f"{i}.jpg", "split": "test", "sentences": sentences})
    (tmp_path / "dataset_flickr30k.json").write_text(
        json.dumps({"images": images, "dataset": "flickr30k"})
    )
    data = load_captioned(tmp_path)
    assert data.name == "flickr30k-test"
    assert data.images == [tmp_path / f"{i}.jpg" for i in range(3)]
    assert data.captions == sum((_five(f"{i}.jpg") for i in range(3)), [])
    assert data.caption_image.tolist() == [0] * 5 + [1] * 5 + [2] * 5


def _coco(root: Path) -> Path:
    """coco_test_karpathy.json with images in val2014/ and annotations interleaved."""
    _image(root / "val2014" / "COCO_val2014_7.jpg", 1)
    _image(root / "val2014" / "COCO_val2014_3.jpg", 2)
    images = [
        {"id": 7, "file_name": "COCO_val2014_7.jpg"},
        {"id": 3, "file_name": "COCO_val2014_3.jpg"},
    ]
    annotations = [
        {"image_id": image_id, "id": 10 * k + image_id, "caption": f"image {image_id} caption {k}"}
        for k in range(5)
        for image_id in (3, 7)
    ]
    path = root / "coco_test_karpathy.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations}))
    return path


def test_coco_captions_grouped_per_image_in_file_order(tmp_path):
    path = _coco(tmp_path)
    data = read_coco_captions(path, tmp_path)
    assert data.images == [
        tmp_path / "val2014" / "COCO_val2014_7.jpg",
        tmp_path / "val2014" / "COCO_val2014_3.jpg",
    ]
    assert data.captions == [f"image 7 caption {k}" for k in range(5)] + [
        f"image 3 caption {k}" for k in range(5)
    ]
    assert data.caption_image.tolist() == [0] * 5 + [1] * 5
    assert data.name == "coco_test_karpathy"
    assert load_captioned(tmp_path).captions == data.captions


def _flickr(root: Path) -> Path:
    """flickr30k_test_karpathy.txt, lines of two images interleaved, images in
    flickr30k-images/."""
    for i, name in enumerate(("1000.jpg", "99.jpg")):
        _image(root / "flickr30k-images" / name, i)
    lines = ["image,caption"]
    for k in range(5):
        lines += [f"1000.jpg,first {k}", f"99.jpg,second {k}"]
    lines[3] = "1000.jpg,a dog, a cat, and a bird.jpg, all running"
    path = root / "flickr30k_test_karpathy.txt"
    path.write_text("\n".join(lines) + "\n\n")
    return path


def test_flickr_text_split_at_first_jpg_comma(tmp_path):
    path = _flickr(tmp_path)
    data = read_flickr_captions(path, tmp_path)
    assert data.images == [
        tmp_path / "flickr30k-images" / "1000.jpg",
        tmp_path / "flickr30k-images" / "99.jpg",
    ]
    assert data.captions == [
        "first 0",
        "a dog, a cat, and a bird.jpg, all running",
        "first 2",
        "first 3",
        "first 4",
    ] + [f"second {k}" for k in range(5)]
    assert data.caption_image.tolist() == [0] * 5 + [1] * 5
    assert load_captioned(tmp_path).captions == data.captions


def test_flickr8k_images_folder(tmp_path):
    _image(tmp_path / "Images" / "a.jpg")
    (tmp_path / "flickr8k_test_karpathy.txt").write_text("image,caption\na.jpg,one\na.jpg,two\n")
    data = load_captioned(tmp_path)
    assert data.images == [tmp_path / "Images" / "a.jpg"]
    assert data.captions == ["one", "two"]


def test_caption_folder(tmp_path):
    _image(tmp_path / "b" / "x.png")
    (tmp_path / "b" / "x.txt").write_text("first line\n\n  second line  \n")
    _image(tmp_path / "a.jpg", 3)
    (tmp_path / "a.txt").write_text("only caption")
    _image(tmp_path / "c.png")  # no caption file
    data = load_captioned(tmp_path)
    assert read_caption_folder(tmp_path).captions == data.captions
    assert data.images == [tmp_path / "a.jpg", tmp_path / "b" / "x.png"]
    assert data.captions == ["only caption", "first line", "second line"]
    assert data.caption_image.tolist() == [0, 1, 1]
    assert data.skipped == 1
    assert data.name == tmp_path.name


def test_explicit_annotations_file_elsewhere(tmp_path):
    path = _coco(tmp_path)
    moved = tmp_path.parent / f"{tmp_path.name}-annotations.json"
    moved.write_bytes(path.read_bytes())
    path.unlink()
    assert len(load_captioned(tmp_path, annotations=moved)) == 2


def test_subset_renumbers_and_keeps_caption_order(tmp_path):
    data = read_karpathy(_karpathy_coco(tmp_path), tmp_path, split="test")
    second = data.subset([1])
    assert second.images == [data.images[1]]
    assert second.captions == data.captions[5:]
    assert second.caption_image.tolist() == [0] * 5
    swapped = data.subset(np.array([1, 0]))
    assert swapped.images == data.images[::-1]
    assert swapped.captions == data.captions
    assert swapped.caption_image.tolist() == [1] * 5 + [0] * 5
    assert data.first(1).images == data.images[:1]
    assert len(data.first(10)) == 2
    with pytest.raises(ValueError, match="repeat"):
        data.subset([0, 0])


@given(
    per_image=st.lists(st.integers(1, 3), min_size=1, max_size=8),
    data=st.data(),
)
def test_subset_keeps_each_caption_with_its_image(per_image, data):
    owner = np.repeat(np.arange(len(per_image)), per_image)
    owner = data.draw(st.permutations(owner.tolist()))
    captions = [f"caption {j} of image {i}" for j, i in enumerate(owner)]
    full = CaptionedImages("toy", [f"image {i}" for i in range(len(per_image))], captions, owner)
    rows = data.draw(st.permutations(range(len(per_image))))
    rows = rows[: data.draw(st.integers(1, len(rows)))]
    part = full.subset(rows)
    assert len(part) == len(rows)
    for caption, image in zip(part.captions, part.caption_image, strict=True):
        assert caption.endswith(f"of {part.images[image]}")
    expected = [c for c, i in zip(captions, owner, strict=True) if i in rows]
    assert part.captions == expected  # every caption of a kept image, in the original order


# ---------------------------------------------------------------------------------- errors


def test_invalid_json_names_line_and_column(tmp_path):
    path = tmp_path / "dataset_coco.json"
    path.write_text('{"images": [\n  {"filename": }\n]}')
    with pytest.raises(DatasetError, match=r"dataset_coco\.json: invalid JSON at line 2, column"):
        load_captioned(tmp_path)


def test_karpathy_missing_keys(tmp_path):
    path = _karpathy_coco(tmp_path)
    doc = json.loads(path.read_text())
    del doc["images"][3]["sentences"]
    path.write_text(json.dumps(doc))
    with pytest.raises(DatasetError, match=r"dataset_coco\.json: images\[3\] has no 'sentences'"):
        load_captioned(tmp_path)
    doc = json.loads(_karpathy_coco(tmp_path).read_text())
    del doc["images"][0]["sentences"][2]["raw"]
    path.write_text(json.dumps(doc))
    with pytest.raises(DatasetError, match=r"images\[0\]\.sentences\[2\] has no 'raw'"):
        read_karpathy(path, tmp_path)
    doc["images"][0]["sentences"][2]["raw"] = 5
    path.write_text(json.dumps(doc))
    with pytest.raises(DatasetError, match=r"images\[0\]\.sentences\[2\]\.raw is a int"):
        read_karpathy(path, tmp_path)


def test_karpathy_unknown_split_lists_splits(tmp_path):
    path = _karpathy_coco(tmp_path)
    with pytest.raises(
        DatasetError,
        match=r"coco\.json: no images in split 'dev'; splits: \['restval', 'test', 'train'\]",
    ):
        load_captioned(tmp_path, split="dev")
    with pytest.raises(DatasetError, match="splits"):
        read_karpathy(path, tmp_path, split="dev")


def test_all_captions_empty_names_the_entry(tmp_path):
    path = _karpathy_coco(tmp_path)
    doc = json.loads(path.read_text())
    for sentence in doc["images"][3]["sentences"]:
        sentence["raw"] = "  "
    path.write_text(json.dumps(doc))
    with pytest.raises(
        DatasetError,
        match=r"dataset_coco\.json: images\[3\] \(COCO_val2014_4\.jpg\) has no non-empty caption",
    ):
        load_captioned(tmp_path)


def test_coco_errors(tmp_path):
    path = _coco(tmp_path)
    doc = json.loads(path.read_text())
    del doc["annotations"][3]["caption"]
    path.write_text(json.dumps(doc))
    with pytest.raises(DatasetError, match=r"coco_test_karpathy\.json: annotations\[3\] has no"):
        load_captioned(tmp_path)
    doc["annotations"][3]["caption"] = "x"
    doc["annotations"][4]["image_id"] = 99
    path.write_text(json.dumps(doc))
    with pytest.raises(DatasetError, match=r"annotations\[4\] refers to image_id 99"):
        read_coco_captions(path, tmp_path)
    doc["annotations"] = [a for a in doc["annotations"] if a["image_id"] == 7]
    path.write_text(json.dumps(doc))
    with pytest.raises(DatasetError, match=r"images\[1\] \(COCO_val2014_3\.jpg\) has no non-emp"):
        read_coco_captions(path, tmp_path)
    doc["images"][1]["id"] = 7
    path.write_text(json.dumps(doc))
    with pytest.raises(DatasetError, match=r"images\[1\] repeats id 7"):
        read_coco_captions(path, tmp_path)


def test_unknown_json_format(tmp_path):
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"images": [{"file_name": "a.jpg"}]}))
    with pytest.raises(DatasetError, match=r"other\.json: neither"):
        load_captioned(tmp_path, annotations=path)
    path.write_text("[1, 2]")
    with pytest.raises(DatasetError, match=r"other\.json: a JSON list"):
        load_captioned(tmp_path, annotations=path)


def test_flickr_line_without_jpg_comma(tmp_path):
    path = _flickr(tmp_path)
    lines = path.read_text().splitlines()
    lines[4] = "99.png,not a jpg line"
    path.write_text("\n".join(lines))
    with pytest.raises(DatasetError, match=r"flickr30k_test_karpathy\.txt: line 5 is not"):
        load_captioned(tmp_path)


def test_flickr_not_utf8_names_the_line(tmp_path):
    path = _flickr(tmp_path)
    path.write_bytes(path.read_bytes() + b"99.jpg,\xff\xfe\n")
    with pytest.raises(DatasetError, match=r"karpathy\.txt: line 13 is not UTF-8"):
        read_flickr_captions(path, tmp_path)


def test_missing_images_named_and_counted(tmp_path):
    path = _karpathy_coco(tmp_path)
    (tmp_path / "val2014" / "COCO_val2014_1.jpg").unlink()
    (tmp_path / "val2014" / "COCO_val2014_4.jpg").unlink()
    with pytest.raises(
        DatasetError,
        match=r"dataset_coco\.json: 2 image\(s\) not found under .*val2014/COCO_val2014_1\.jpg",
    ):
        read_karpathy(path, tmp_path)


def test_image_name_leaving_the_folder(tmp_path):
    (tmp_path / "flickr30k_test_karpathy.txt").write_text("h\n../secret.jpg,caption\n")
    with pytest.raises(DatasetError, match=r"karpathy\.txt: image name '\.\./secret\.jpg' leaves"):
        load_captioned(tmp_path)


def test_nothing_to_read(tmp_path):
    _image(tmp_path / "a.jpg")
    with pytest.raises(DatasetError) as caught:
        load_captioned(tmp_path, split="val")
    message = str(caught.value)
    assert "dataset_coco.json" in message and "coco_val_karpathy.json" in message
    assert "none of its 1 image file(s) has a same-stem .txt" in message
    with pytest.raises(DatasetError, match="does not exist"):
        load_captioned(tmp_path / "absent")


def test_blank_caption_file_named(tmp_path):
    _image(tmp_path / "a.jpg")
    (tmp_path / "a.txt").write_text(" \n\n")
    with pytest.raises(DatasetError, match=r"a\.txt: no non-empty caption line"):
        read_caption_folder(tmp_path)


def test_oversized_annotation_refused(tmp_path, monkeypatch):
    _karpathy_coco(tmp_path)
    _flickr(tmp_path / "flickr")
    monkeypatch.setattr(captioned_module, "MAX_ANNOTATION_BYTES", 100)
    with pytest.raises(DatasetError, match=r"dataset_coco\.json: over 100 bytes, refused"):
        load_captioned(tmp_path)
    with pytest.raises(DatasetError, match=r"karpathy\.txt: over 100 bytes, refused"):
        load_captioned(tmp_path / "flickr")


def test_unreadable_annotation(tmp_path):
    with pytest.raises(DatasetError, match=r"absent\.txt: cannot read"):
        read_flickr_captions(tmp_path / "absent.txt", tmp_path)


def test_captioned_images_checks_its_indices():
    with pytest.raises(DatasetError, match=r"toy: 1 image\(s\) without a caption, first: \[1\]"):
        CaptionedImages("toy", ["a", "b"], ["x", "y"], np.array([0, 0]))
    with pytest.raises(DatasetError, match="caption 1 refers to image 2"):
        CaptionedImages("toy", ["a", "b"], ["x", "y", "z"], np.array([0, 2, 1]))
    with pytest.raises(DatasetError, match="3 captions"):
        CaptionedImages("toy", ["a"], ["x", "y", "z"], np.array([0, 0]))
