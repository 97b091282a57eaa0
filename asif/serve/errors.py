"""How errors become HTTP answers: one `{"detail": ...}` shape for every error a user causes.

The library raises `AsifError`s for bad input (an undecodable image, a template, a strategy,
a label), so handlers need not check again: this module maps them once.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from asif.errors import AsifError, ImageDecodeError, ImageTooLargeError
from asif.serve.schemas import ErrorResponse

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 413, 415, 422)
}  # the error answers the POST endpoints document


def status_code(exc: AsifError) -> int:
    """413 for an image of too many pixels, 415 for a file that is not a decodable image,
    422 for any other bad input."""
    if isinstance(exc, ImageTooLargeError):
        return 413
    return 415 if isinstance(exc, ImageDecodeError) else 422


async def asif_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AsifError)  # registered for AsifError only
    return JSONResponse({"detail": str(exc)}, status_code=status_code(exc))


async def invalid_request(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422 without echoing the input: a NaN or huge value in it cannot be written
    as JSON (a 500), and a large body need not come back."""
    assert isinstance(exc, RequestValidationError)
    detail = [{k: e[k] for k in ("type", "loc", "msg") if k in e} for e in exc.errors()]
    return JSONResponse({"detail": detail}, status_code=422)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AsifError, asif_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
