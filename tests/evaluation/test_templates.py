import pytest

from asif.evaluation.templates import (
    CIFAR_TEMPLATES,
    IMAGENET_TEMPLATES,
    TEMPLATE_SETS,
    templates,
)
from asif.model import zero_shot


def test_clip_template_sets():
    assert len(CIFAR_TEMPLATES) == 18 and len(set(CIFAR_TEMPLATES)) == 18
    assert len(IMAGENET_TEMPLATES) == 80 and len(set(IMAGENET_TEMPLATES)) == 80
    assert IMAGENET_TEMPLATES[0] == "a bad photo of a {}."
    assert "itap of a {}." in IMAGENET_TEMPLATES
    for name, templ in TEMPLATE_SETS.items():
        assert all(t.count("{}") == 1 for t in templ), name


def test_lookup():
    assert templates("cifar") is CIFAR_TEMPLATES
    assert templates("default") is zero_shot.DEFAULT_TEMPLATES  # defined once, in the library
    with pytest.raises(ValueError, match="unknown template set"):
        templates("nope")
