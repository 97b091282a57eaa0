"""Zero-shot classifiers: class prompts turned into relative representations, and the answers."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from string import Formatter
from typing import Literal

import numpy as np
import scipy.sparse as sp

from asif.errors import EmptyInputError, LabelError, SettingsError, StrategyError, TemplateError
from asif.model.relative import SparseRelative, similarity

Strategy = Literal["max", "mean"]
STRATEGIES: tuple[Strategy, ...] = ("max", "mean")
DEFAULT_STRATEGY: Strategy = "max"  # the reference's: every (class, template) prompt competes
UNKNOWN = "unknown"
DEFAULT_TEMPLATES: tuple[str, ...] = ("a photo of a {}.",)


def check_template(template: str) -> str:
    """`template` if it has exactly one plain `{}` field (literal braces doubled).

    Field names, attributes, conversions and format specs (`{0.__class__}`, `{:>99999999}`)
    are refused: a template comes from users and must not reach into objects or allocate.
    """
    try:
        fields = [
            (f, spec, conv) for _, f, spec, conv in Formatter().parse(template) if f is not None
        ]
    except ValueError as e:
        raise TemplateError(f"template {template!r} is not a valid format string: {e}") from None
    if fields != [("", "", None)]:
        raise TemplateError(
            f"template {template!r} must contain exactly one '{{}}' where the class name goes "
            "(and no other fields; write literal braces as '{{' and '}}')"
        )
    return template


def fill(template: str, class_name: str) -> str:
    """The prompt for one class: `template` (checked) with `{}` replaced by `class_name`."""
    return check_template(template).format(class_name)


def prompts(class_names: Sequence[str], templates: Sequence[str]) -> list[str]:
    """Every (class, template) caption, class-major: class c's prompts are c*T .. c*T+T-1."""
    if not class_names:
        raise EmptyInputError("the label list is empty: give at least one class name")
    if not templates:
        raise EmptyInputError("the template list is empty: give at least one template")
    for t in templates:
        check_template(t)
    blank = [i for i, c in enumerate(class_names) if not str(c).strip()]
    if blank:
        raise LabelError(f"class names at positions {blank} are empty")
    return [t.format(c) for c in class_names for t in templates]


def parse_labels(fields: Sequence[str]) -> list[str]:
    """Class names from fields (CLI arguments, form fields), each holding one name or several
    separated by commas; blank names are refused rather than dropped."""
    names = [s.strip() for item in fields for s in item.split(",")]
    if not any(names):
        raise LabelError("labels are empty: give at least one class name")
    if not all(names):
        raise LabelError(f"labels contain an empty class name: {list(fields)}")
    repeated = sorted(n for n, times in Counter(names).items() if times > 1)
    if repeated:
        raise LabelError(f"labels repeat {repeated}: give each class once")
    return names


def check_strategy(strategy: str) -> Strategy:
    """`strategy` if it is one of STRATEGIES, else StrategyError."""
    if strategy not in STRATEGIES:
        raise StrategyError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    return strategy


def _mean_per_class(rel: SparseRelative, n_classes: int) -> SparseRelative:
    """Each class's template vectors averaged and re-normalised, kept sparse."""
    n_templates = len(rel) // n_classes
    pooling = sp.kron(sp.identity(n_classes), np.ones((1, n_templates)), format="csr")
    means = (pooling @ rel.to_csr()).tocsr()
    means.sum_duplicates()
    width = max(int(np.diff(means.indptr).max()), 1)
    indices = np.zeros((n_classes, width), dtype=np.int64)
    values = np.zeros((n_classes, width), dtype=np.float32)
    for c in range(n_classes):
        row = means.getrow(c)
        order = np.lexsort((row.indices, -row.data))
        indices[c, : len(order)] = row.indices[order]
        values[c, : len(order)] = row.data[order] / max(np.linalg.norm(row.data), 1e-30)
    return SparseRelative(indices, values, rel.n_anchors)


@dataclass(frozen=True)
class ZeroShotClassifier:
    """Class prompts as relative representations, scored against images by inner product.

    With strategy "max" (the reference's), each (class, template) prompt is a candidate and a
    class scores as its best prompt; with "mean", each class is the mean of its prompts' vectors.
    """

    class_names: list[str]
    templates: list[str]
    strategy: Strategy
    text_relative: SparseRelative

    @property
    def n_templates(self) -> int:
        return len(self.templates)

    @classmethod
    def from_prompt_relatives(
        cls,
        class_names: Sequence[str],
        templates: Sequence[str],
        prompt_relative: SparseRelative,
        strategy: Strategy = DEFAULT_STRATEGY,
    ) -> ZeroShotClassifier:
        """Build from the relative representations of `prompts(class_names, templates)`."""
        check_strategy(strategy)
        rel = prompt_relative
        if strategy == "mean":
            rel = _mean_per_class(prompt_relative, len(class_names))
        return cls(list(class_names), list(templates), strategy, rel)

    def deciding_vector(
        self, label: int, image_relative: SparseRelative
    ) -> tuple[str, SparseRelative]:
        """The text (prompt or class mean) and its vector that give class `label` its score."""
        name = self.class_names[label]
        if self.strategy == "mean":
            return f"mean of {self.n_templates} prompts for {name!r}", self.text_relative[label]
        first = label * self.n_templates
        rows = self.text_relative[first : first + self.n_templates]
        best = int(np.argmax(similarity(image_relative, rows)[0]))
        return fill(self.templates[best], name), self.text_relative[first + best]

    def scores(self, image_relative: SparseRelative) -> np.ndarray:
        """(n_images, n_classes) scores."""
        s = similarity(image_relative, self.text_relative)
        if self.strategy == "max":
            s = s.reshape(len(s), len(self.class_names), self.n_templates).max(axis=2)
        return s

    def predict(self, image_relative: SparseRelative, threshold: float | None = None) -> Prediction:
        """Classes for each image; "unknown" where the best score is below `threshold`."""
        return Prediction.from_scores(self.scores(image_relative), self.class_names, threshold)


@dataclass(frozen=True)
class Prediction:
    """Zero-shot answers: `label_ids` are class indices, -1 where the answer is unknown."""

    scores: np.ndarray
    class_names: list[str]
    label_ids: np.ndarray
    threshold: float | None

    @classmethod
    def from_scores(
        cls, scores: np.ndarray, class_names: Sequence[str], threshold: float | None = None
    ) -> Prediction:
        best = scores.argmax(axis=1)
        if threshold is not None:
            if not math.isfinite(threshold):  # NaN would never answer "unknown"
                raise SettingsError(f"threshold must be a finite number, got {threshold!r}")
            best = np.where(scores.max(axis=1) < threshold, -1, best)
        return cls(scores, list(class_names), best, threshold)

    @property
    def labels(self) -> list[str]:
        return [UNKNOWN if i < 0 else self.class_names[i] for i in self.label_ids]

    def topk(self, k: int = 5) -> np.ndarray:
        """(n, min(k, C)) class indices, best first (ties: lower index)."""
        return np.argsort(-self.scores, axis=1, kind="stable")[:, :k]

    def accuracy(self, targets: Sequence[int] | np.ndarray, k: int = 1) -> float:
        """Top-k accuracy; an unknown answer counts as wrong for k = 1."""
        t = np.asarray(targets)
        if k == 1:
            return float(np.mean(self.label_ids == t))
        return float(np.mean((self.topk(k) == t[:, None]).any(axis=1)))
