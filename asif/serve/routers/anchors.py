"""`/anchors/{id}` and its thumbnail: what one anchor pair of the served version is."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path
from fastapi.responses import Response

from asif.serve import schemas
from asif.serve.access import Authorized
from asif.serve.dependencies import Snap
from asif.serve.live_model import Snapshot
from asif.store.schema import CAPTION, HEIGHT, SHARD, THUMBNAIL, URL, WIDTH
from asif.store.thumbnails import MEDIA_TYPES, media_type

router = APIRouter(dependencies=[Authorized])
MAX_ID_CHARS = 256
AnchorId = Annotated[str, Path(min_length=1, max_length=MAX_ID_CHARS)]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": schemas.ErrorResponse}}
CACHE = "private, max-age=3600"  # an id names one (url, caption) pair; its image rarely changes


def _row(snap: Snapshot, anchor_id: str, columns: list[str]) -> dict[str, Any]:
    row = snap.table.lookup(anchor_id, columns)
    if row is None:
        raise HTTPException(404, f"no anchor {anchor_id!r} in table version {snap.version}")
    return row


@router.get("/anchors/{anchor_id}", response_model=schemas.AnchorResponse, responses=NOT_FOUND)
def anchor(snap: Snap, anchor_id: AnchorId) -> dict[str, Any]:
    """One anchor pair of the served version: caption, url, source image size, shard."""
    columns = [CAPTION, URL, WIDTH, HEIGHT, SHARD]
    has_thumbnails = snap.table.has_thumbnails
    row = _row(snap, anchor_id, [*columns, THUMBNAIL] if has_thumbnails else columns)
    thumbnail = media_type(row.pop(THUMBNAIL, None))
    return {"version": snap.version, "anchor_id": anchor_id, **row, "thumbnail": bool(thumbnail)}


@router.get(
    "/anchors/{anchor_id}/thumbnail",
    response_class=Response,
    responses={200: {"content": {kind: {} for kind in MEDIA_TYPES}}, **NOT_FOUND},
)
def thumbnail(snap: Snap, anchor_id: AnchorId) -> Response:
    """The anchor's thumbnail image (404 when the table keeps none for it)."""
    if not snap.table.has_thumbnails:
        raise HTTPException(404, f"table version {snap.version} keeps no thumbnails")
    data = _row(snap, anchor_id, [THUMBNAIL])[THUMBNAIL]
    kind = media_type(data)
    if kind is None:
        raise HTTPException(404, f"anchor {anchor_id!r} has no thumbnail")
    headers = {"Cache-Control": CACHE, "X-Content-Type-Options": "nosniff"}
    return Response(data, media_type=kind, headers=headers)
