"""`/retrieve/captions` and `/retrieve/anchors`: captions for an image, anchors for a text."""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Form

from asif.errors import EmptyInputError
from asif.serve import schemas
from asif.serve.access import Authorized
from asif.serve.dependencies import Batcher, Settings, Snap
from asif.serve.errors import ERRORS
from asif.serve.uploads import ImageFile, read_image

router = APIRouter(responses=ERRORS, dependencies=[Authorized])


@router.post("/retrieve/captions", response_model=schemas.CaptionsResponse)
def retrieve_captions(
    snap: Snap,
    settings: Settings,
    batcher: Batcher,
    image: ImageFile,
    captions: Annotated[
        list[str] | None,
        Form(description="candidate captions to rank; without them, the anchors' captions"),
    ] = None,
    top: Annotated[int, Form(ge=1, le=1000)] = 5,
) -> dict[str, Any]:
    """The captions that best describe an image: the given candidates ranked by ASIF score,
    or the captions of the anchors whose images are most like it (largest r_i(x))."""
    model = snap.model
    embedded = batcher.embed(model, read_image(image, settings))
    candidates = [c for c in captions or [] if c.strip()]
    settings.check_texts("captions", candidates, settings.max_labels)
    if captions and not candidates:
        raise EmptyInputError("the candidate captions are all empty")
    if candidates:
        texts = model.embed_texts(candidates)
        order, scores = model.retrieve_embeddings(embedded.embedding, texts, "image", top)
        ranked = [(candidates[i], s) for i, s in zip(order[0], scores[0], strict=True)]
        return {**schemas.served_by(snap), "source": "candidates", "captions": _ranked(ranked)}
    rel = embedded.relative
    hits = _top_entries(rel.indices[0], rel.values[0], top)
    ranked = [(model.anchors.captions[i], v) for i, v in hits]
    return {**schemas.served_by(snap), "source": "anchors", "captions": _ranked(ranked)}


@router.post("/retrieve/anchors", response_model=schemas.AnchorsResponse)
def retrieve_anchors(
    snap: Snap, settings: Settings, query: schemas.AnchorsRequest
) -> dict[str, Any]:
    """The anchor pairs whose captions are most like a text (largest r_i(y))."""
    if not query.text.strip():
        raise EmptyInputError("the query text is blank")
    settings.check_texts("query texts", [query.text], 1)
    model = snap.model
    rel = model.text_relative(model.embed_texts([query.text]))
    a = model.anchors
    hits = [
        {"anchor_id": a.ids[i], "caption": a.captions[i], "url": a.urls[i], "weight": v}
        for i, v in _top_entries(rel.indices[0], rel.values[0], query.top)
    ]
    return {"version": snap.version, "anchors": hits}


def _top_entries(indices: np.ndarray, values: np.ndarray, top: int) -> list[tuple[int, float]]:
    """The `top` largest positive entries of one sparse row, best first."""
    order = np.argsort(-values, kind="stable")[:top]
    return [(int(indices[i]), float(values[i])) for i in order if values[i] > 0]


def _ranked(pairs: list[tuple[str, float]]) -> list[dict[str, Any]]:
    return [{"caption": c, "score": float(s)} for c, s in pairs]
