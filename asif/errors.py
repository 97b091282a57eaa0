"""Errors that name the problem in the user's terms."""


class AsifError(Exception):
    """Base class of the errors this package raises on bad input."""


class ImageDecodeError(AsifError, ValueError):
    """An image file or payload could not be read or decoded."""


class DimensionMismatchError(AsifError, ValueError):
    """Embeddings whose dimension does not match the anchors or the table."""


class EncoderMismatchError(AsifError, ValueError):
    """Rows or queries embedded with other encoders than the anchor set's."""


class EmptyInputError(AsifError, ValueError):
    """An empty label list, caption list or anchor set where one is required."""


class SchemaMismatchError(AsifError, ValueError):
    """Rows that do not fit the anchor table's schema: a missing column, a lossy cast, bad ids."""


class ValidationFailedError(AsifError):
    """A batch that failed validation; carries the report and where the batch was quarantined."""

    def __init__(self, message: str, report: object = None, quarantine_path: object = None):
        super().__init__(message)
        self.report = report
        self.quarantine_path = quarantine_path
