import numpy as np
import pytest

from asif.errors import LabelError, SettingsError, StrategyError, TemplateError
from asif.model.zero_shot import (
    Prediction,
    check_strategy,
    check_template,
    fill,
    parse_labels,
    prompts,
)


@pytest.mark.parametrize("template", ["a photo of a {}.", "{}", "a {{literal}} {}"])
def test_plain_templates_pass(template):
    assert check_template(template) == template


@pytest.mark.parametrize(
    "template",
    ["no slot", "{} and {}", "{0}", "{name}", "{0.__class__}", "{.__init__.__globals__}",
     "{:>99999999}", "{!r}", "{", "}", "{}{"],
)  # fmt: skip
def test_hostile_or_broken_templates_are_a_template_error(template):
    with pytest.raises(TemplateError, match="template"):
        check_template(template)
    with pytest.raises(TemplateError):
        prompts(["cat"], [template])


def test_fill_and_strategy():
    assert fill("a {{x}} {}", "cat") == "a {x} cat"
    assert check_strategy("mean") == "mean"
    with pytest.raises(StrategyError, match="'median'"):
        check_strategy("median")


def test_parse_labels_and_thresholds():
    assert parse_labels(["cat, dog", " car "]) == ["cat", "dog", "car"]
    with pytest.raises(LabelError, match=r"repeat \['cat'\]"):
        parse_labels(["cat,dog", "cat"])
    with pytest.raises(SettingsError, match="finite"):
        Prediction.from_scores(np.zeros((1, 2)), ["a", "b"], float("nan"))
