"""How errors become HTTP answers: one `{"detail": ...}` shape for every error a user causes.

The library raises `AsifError`s for bad input (an undecodable image, a template, a strategy,
a label), so handlers need not check again: this module maps them once.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from asif.errors import AsifError, ImageDecodeError
from asif.serve.schemas import ErrorResponse

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 413, 415, 422)
}  # the error answers the POST endpoints document


def status_code(exc: AsifError) -> int:
    """415 for a file that is not a decodable image, 422 for any other bad input."""
    return 415 if isinstance(exc, ImageDecodeError) else 422


async def asif_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AsifError)  # registered for AsifError only
    return JSONResponse({"detail": str(exc)}, status_code=status_code(exc))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AsifError, asif_error)
