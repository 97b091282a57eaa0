"""The model's settings: one immutable, typed object, and the one place their defaults live."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

from asif.errors import SettingsError

DEFAULT_K = 800  # anchors kept per relative representation (the paper's default)
DEFAULT_P = 8.0  # power applied to the kept similarities (the paper's default)
DEFAULT_CHUNK = 100_000  # anchors scanned at a time: bounds memory, not results


@dataclass(frozen=True)
class ModelSettings:
    """What an ASIF model is, besides its anchors: the encoders' names, k, p and chunk size.

    Change one with `replace` (a new object); every component reads the same object, so a
    setting is never spelled out twice.
    """

    image_encoder: str
    text_encoder: str
    k: int = DEFAULT_K
    p: float = DEFAULT_P
    chunk_size: int = DEFAULT_CHUNK

    def __post_init__(self) -> None:
        object.__setattr__(self, "k", _positive_int("k", self.k))
        object.__setattr__(self, "chunk_size", _positive_int("chunk_size", self.chunk_size))
        if isinstance(self.p, bool) or not isinstance(self.p, Real) or not 0 < self.p <= 64:
            raise SettingsError(f"p must be a number in (0, 64], got {self.p!r}")
        object.__setattr__(self, "p", float(self.p))

    def replace(self, **changes: Any) -> ModelSettings:
        """These settings with `changes` (checked like new ones)."""
        return dataclasses.replace(self, **changes)


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise SettingsError(f"{name} must be a positive integer, got {value!r}")
    return int(value)
