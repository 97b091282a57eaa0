import pytest

from asif.evaluation.imagenet import clip_class_names, imagenet_class_names, imagenet_names


def test_thousand_distinct_names_by_wnid_and_index():
    names = imagenet_class_names()
    by_index = [names[str(i)] for i in range(1000)]
    assert len(set(by_index)) == 1000 and all(by_index)
    assert names["n01440764"] == names["0"] == "tench"
    assert names["n02012849"] == names["134"] == "crane bird"
    assert names["n03126707"] == names["517"] == "construction crane"


def test_clip_names_by_wnid_and_index_are_the_default():
    clip = clip_class_names("imagenet1k")
    assert len(clip) == 1000 and clip[:2] == ["tench", "goldfish"]
    names = imagenet_names()
    assert [names[str(i)] for i in range(1000)] == clip
    assert names["n01514668"] == names["7"] == "rooster"  # WordNet: "cock"
    assert names["n01608432"] == "kite (bird of prey)"
    assert imagenet_names("wordnet") is imagenet_class_names()
    with pytest.raises(ValueError, match="one of"):
        imagenet_names("openai")


def test_clip_pets_names_and_unknown_sets():
    pets = clip_class_names("pets")
    assert len(pets) == 37 and pets[0] == "Abyssinian" and pets[-1] == "Yorkshire Terrier"
    pets.append("changed")  # a copy: the shipped list stays as it is
    assert len(clip_class_names("pets")) == 37
    with pytest.raises(ValueError, match="no CLIP class names for 'cifar10'"):
        clip_class_names("cifar10")
