import pytest

from asif.errors import LabelError, StrategyError, TemplateError
from asif.model.zero_shot import DEFAULT_TEMPLATES, parse_labels, prompts
from asif.serve.classifiers import snapshot_classifier
from asif.serve.dependencies import ServiceSettings
from asif.serve.live_model import Snapshot

FOUR, TWO = ServiceSettings(classifier_cache=4), ServiceSettings(classifier_cache=2)


class PromptModel:
    """Stands in for a model: builds (checks) the prompts and records each classifier made."""

    def __init__(self) -> None:
        self.made: list[tuple] = []

    def zero_shot_classifier(self, names, templates, strategy):
        prompts(names, templates)
        self.made.append((names, templates, strategy))
        return object()


def snapshot() -> Snapshot:
    return Snapshot(PromptModel(), table=None, ids=None, how="full", seconds=0.0)


def test_labels_from_repeated_and_comma_separated_fields():
    assert parse_labels(["cat, dog", " car "]) == ["cat", "dog", "car"]
    with pytest.raises(LabelError, match="labels are empty"):
        parse_labels(["", " , "])
    with pytest.raises(LabelError, match="empty class name"):
        parse_labels(["cat,", "dog"])


def test_classifier_is_made_once_per_snapshot_and_key():
    snap = snapshot()
    first = snapshot_classifier(
        snap, ["cat,dog"], None, "max", limits=ServiceSettings(classifier_cache=4)
    )
    assert (
        snapshot_classifier(
            snap, ["cat", "dog"], None, "max", limits=ServiceSettings(classifier_cache=4)
        )
        is first
    )
    assert snap.model.made == [(["cat", "dog"], list(DEFAULT_TEMPLATES), "max")]
    assert list(snap.classifiers) == [(("cat", "dog"), DEFAULT_TEMPLATES, "max")]
    snapshot_classifier(snap, ["cat"], ["a {}"], "mean", FOUR)
    assert len(snap.model.made) == 2 and len(snap.classifiers) == 2


def test_cache_is_emptied_at_capacity():
    snap = snapshot()
    for name in ("a", "b", "c"):
        snapshot_classifier(snap, [name], None, "max", TWO)
    assert list(snap.classifiers) == [(("c",), DEFAULT_TEMPLATES, "max")]


@pytest.mark.parametrize(
    "templates, strategy, error",
    [
        (["{0.__class__}"], "max", TemplateError),
        (["{:>99999999}"], "max", TemplateError),
        (["no placeholder"], "max", TemplateError),
        (None, "median", StrategyError),
    ],
)
def test_refused_input_is_never_cached(templates, strategy, error):
    snap = snapshot()
    with pytest.raises(error):
        snapshot_classifier(
            snap, ["cat"], templates, strategy, limits=ServiceSettings(classifier_cache=4)
        )
    assert not snap.classifiers and not snap.model.made
