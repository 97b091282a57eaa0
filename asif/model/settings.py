"""The model's settings: one immutable, typed object, and the one place their defaults live."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from numbers import Real
from typing import Any

from asif.errors import SettingsError, require_positive_int

# Chosen on the demo's 1,000 Fashion-MNIST anchors (benchmarks/choose_kp.py, docs/evaluate.md):
# p=16 beats the paper's 8 by ~3 points there, and with p >= 16 any k from 100 to all anchors
# scores the same, so k keeps the paper's 800 (chosen at 1.6M anchors) for large tables.
DEFAULT_K = 800  # anchors kept per relative representation (the paper's value)
DEFAULT_P = 16.0  # power applied to the kept similarities


@dataclass(frozen=True)
class ModelSettings:
    """What an ASIF model is, besides its anchors: the encoders' names, k and p.

    Change one with `replace` (a new object); every component reads the same object, so a
    setting is never spelled out twice. How anchors are scanned (chunk size, precision) is
    the top-k backend's business, not the model's.
    """

    image_encoder: str
    text_encoder: str
    k: int = DEFAULT_K
    p: float = DEFAULT_P

    def __post_init__(self) -> None:
        object.__setattr__(self, "k", require_positive_int("k", self.k))
        if isinstance(self.p, bool) or not isinstance(self.p, Real) or not 0 < self.p <= 64:
            raise SettingsError(f"p must be a number in (0, 64], got {self.p!r}")
        object.__setattr__(self, "p", float(self.p))

    def replace(self, **changes: Any) -> ModelSettings:
        """These settings with `changes` (checked like new ones)."""
        return dataclasses.replace(self, **changes)
