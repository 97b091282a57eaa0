"""What each request gets from the app: the live model, its snapshot, the watcher, the limits.

`Snap` is taken once per request (FastAPI caches a dependency within a request), so a
handler answers from one table version even if the watcher swaps in another meanwhile.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from asif.encoders.images import MAX_PIXELS
from asif.errors import LimitError, require_positive_int
from asif.serve.batching import BatchSettings, ImageBatcher
from asif.serve.live_model import LiveModel, Snapshot
from asif.serve.watcher import TableWatcher

DEFAULT_MAX_UPLOAD = 10 * 1024 * 1024
CLASSIFIER_CACHE = 256  # label sets whose prompt representations each snapshot keeps
FORM_ALLOWANCE = 1024 * 1024  # bytes of form fields (labels, templates) beside the image


@dataclass(frozen=True)
class ServiceSettings:
    """The app-wide settings, fixed when the app is made (kept in `app.state.settings`).

    The limits each bound the work one request can cause: the image file, the pixels it
    decodes to, the whole body (the image plus `FORM_ALLOWANCE` for the other fields), and
    the labels, templates and texts that are embedded for it. `batching` says how uploaded
    images are batched through the encoder.
    """

    max_upload_bytes: int = DEFAULT_MAX_UPLOAD
    max_pixels: int = MAX_PIXELS  # JPEGs beyond it are decoded reduced, other images refused
    classifier_cache: int = CLASSIFIER_CACHE
    max_labels: int = 1000  # class names (or candidate captions) per request
    max_templates: int = 100
    max_text_chars: int = 1000  # per label, template, caption or query text
    batching: BatchSettings = BatchSettings()

    def __post_init__(self) -> None:
        for name in (
            "max_upload_bytes", "max_pixels", "classifier_cache", "max_labels",
            "max_templates", "max_text_chars",
        ):  # fmt: skip
            require_positive_int(name, getattr(self, name))

    @property
    def max_body_bytes(self) -> int:
        return self.max_upload_bytes + FORM_ALLOWANCE

    def check_texts(self, kind: str, texts: Sequence[str], most: int) -> None:
        """LimitError if there are more than `most` texts or one is over `max_text_chars`."""
        if len(texts) > most:
            raise LimitError(f"{len(texts)} {kind} given; at most {most} per request")
        longest = max((len(t) for t in texts), default=0)
        if longest > self.max_text_chars:
            raise LimitError(f"{kind} of {longest} characters; at most {self.max_text_chars} each")


async def live_model(request: Request) -> LiveModel:
    return request.app.state.live


async def current_snapshot(live: Annotated[LiveModel, Depends(live_model)]) -> Snapshot:
    """The live model's snapshot at the start of the request."""
    return live.snapshot


async def table_watcher(request: Request) -> TableWatcher | None:
    """The watcher following the table; None when pinned or not polling."""
    return request.app.state.watcher


async def service_settings(request: Request) -> ServiceSettings:
    return request.app.state.settings


async def image_batcher(request: Request) -> ImageBatcher:
    return request.app.state.batcher


Live = Annotated[LiveModel, Depends(live_model)]
Snap = Annotated[Snapshot, Depends(current_snapshot)]
Watcher = Annotated[TableWatcher | None, Depends(table_watcher)]
Settings = Annotated[ServiceSettings, Depends(service_settings)]
Batcher = Annotated[ImageBatcher, Depends(image_batcher)]
