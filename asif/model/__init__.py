"""The ASIF model: settings, anchor pairs, relative representations, zero-shot, explanations."""

from asif.model.anchor_set import AnchorSet
from asif.model.asif_model import AsifModel
from asif.model.explain import Contribution, Explanation
from asif.model.relative import SparseRelative
from asif.model.settings import ModelSettings
from asif.model.zero_shot import Prediction, ZeroShotClassifier

__all__ = [
    "AnchorSet",
    "AsifModel",
    "Contribution",
    "Explanation",
    "ModelSettings",
    "Prediction",
    "SparseRelative",
    "ZeroShotClassifier",
]
