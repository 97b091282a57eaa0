"""The ASIF model: settings, anchor pairs, relative representations, zero-shot, explanations."""

from asif.model.asif_model import AnchorSet, AsifModel, Contribution, Explanation, checked_queries

__all__ = ["AnchorSet", "AsifModel", "Contribution", "Explanation", "checked_queries"]
