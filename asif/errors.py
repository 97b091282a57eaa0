"""Errors that name the problem in the user's terms."""

from numbers import Integral

import numpy as np


class AsifError(Exception):
    """Base class of the errors this package raises on bad input."""


class ImageDecodeError(AsifError, ValueError):
    """An image file or payload could not be read or decoded."""


class ImageTooLargeError(ImageDecodeError):
    """An image that would decode to more pixels than the limit (refused before decoding)."""


class DimensionMismatchError(AsifError, ValueError):
    """Embeddings whose dimension does not match the anchors or the table."""


class EncoderMismatchError(AsifError, ValueError):
    """Rows or queries embedded with other encoders than the anchor set's."""


class EmptyInputError(AsifError, ValueError):
    """An empty label list, caption list or anchor set where one is required."""


class NonFiniteError(AsifError, ValueError):
    """Embeddings holding NaN or infinite values."""


class EncoderError(AsifError, ValueError):
    """An encoder spec, model name or weights file that cannot be loaded as an encoder."""


class LimitError(AsifError, ValueError):
    """A request over one of the service's limits (labels, templates, text length)."""


class TemplateError(AsifError, ValueError):
    """A prompt template without exactly one `{}` for the class name, or with other fields."""


class StrategyError(AsifError, ValueError):
    """A template strategy other than "max" or "mean"."""


class LabelError(AsifError, ValueError):
    """A class name that is empty, repeated, or not one of the classifier's."""


class SettingsError(AsifError, ValueError):
    """Model settings out of range (k, p, chunk size) or an unknown precision."""


class UnsupportedOperationError(AsifError, TypeError):
    """An operation the model's top-k backend does not offer (editing an index-backed model)."""


def require_finite(x: np.ndarray, name: str) -> None:
    """Raise NonFiniteError naming the rows of the 2-D `x` that hold NaN or infinity."""
    with np.errstate(over="ignore", invalid="ignore"):
        sums = x.sum(axis=1)  # one fast pass; a finite row can overflow it: checked below
    suspect = np.flatnonzero(~np.isfinite(sums))
    bad = suspect[~np.isfinite(x[suspect]).all(axis=1)]
    if len(bad):
        raise NonFiniteError(
            f"{name} hold NaN or infinite values in {len(bad)} row(s), first: {bad[:5].tolist()}"
        )


def require_positive_int(name: str, value: object) -> int:
    """`value` as an int if it is a positive integer (not a bool), else SettingsError."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise SettingsError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


class DatasetError(AsifError, ValueError):
    """A benchmark's files that are missing or malformed: the message names the file and the
    entry (line, image, key)."""


class TableNotFoundError(AsifError, ValueError):
    """No anchor table of that name at that location, or no such version or tag of it."""


class SchemaMismatchError(AsifError, ValueError):
    """Rows that do not fit the anchor table's schema: a missing column, a lossy cast, bad ids."""


class ValidationFailedError(AsifError):
    """A batch that failed validation; carries the report and where the batch was quarantined."""

    def __init__(self, message: str, report: object = None, quarantine_path: object = None):
        super().__init__(message)
        self.report = report
        self.quarantine_path = quarantine_path
