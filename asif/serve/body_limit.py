"""A request body limit enforced while the body streams in, before anything is spooled.

Without it, a multipart upload is written to disk in full before the image size is checked
(500 MB spooled for a 413), and JSON bodies have no limit at all. A declared
Content-Length over the limit is refused at once; a chunked body is counted as it arrives
and refused at the first byte past the limit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import HTTPException
from fastapi.responses import JSONResponse

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]


def too_large(max_bytes: int) -> str:
    return f"request body is larger than the {max_bytes}-byte limit"


class BodyLimit:
    """ASGI middleware: 413 for a request body over `max_bytes`."""

    def __init__(self, app: App, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        refusal = None
        if declared is not None and not declared.isdigit():
            refusal = JSONResponse({"detail": "Content-Length is not a number"}, status_code=400)
        elif declared is not None and int(declared) > self.max_bytes:
            refusal = JSONResponse({"detail": too_large(self.max_bytes)}, status_code=413)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:  # FastAPI answers it as any HTTPException
                    raise HTTPException(413, too_large(self.max_bytes))
            return message

        await self.app(scope, counted, send)
