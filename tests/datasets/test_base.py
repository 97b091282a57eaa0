import numpy as np
import pytest

from asif.datasets import LabelledImages


def _data(n_per_class: int = 5) -> LabelledImages:
    labels = np.repeat(np.arange(3), n_per_class)
    images = np.arange(len(labels) * 4, dtype=np.uint8).reshape(-1, 2, 2)
    return LabelledImages("toy", images, labels, ["a", "b", "c"])


def test_subset_and_stratified():
    data = _data()
    assert list(data.subset(np.array([0, 14])).labels) == [0, 2]
    picked = data.stratified(2, seed=0)
    assert list(np.bincount(picked.labels)) == [2, 2, 2]
    assert picked.labels.tolist() == data.stratified(2, seed=0).labels.tolist()
    as_list = LabelledImages("toy", list(data.images), data.labels, data.class_names)
    assert len(as_list.subset(np.array([1, 2])).images) == 2


def test_images_and_labels_must_pair():
    with pytest.raises(ValueError, match="2 images, 3 labels"):
        LabelledImages("x", [b"a", b"b"], np.zeros(3, np.int64), ["a"])
