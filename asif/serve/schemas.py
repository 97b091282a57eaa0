"""Request and response models of the query service (they make the OpenAPI docs at /docs)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from asif.serve.live_model import Snapshot


class Versioned(BaseModel):
    """Every answer names the table version of the model that gave it."""

    version: int = Field(description="anchor table version of the model that answered")


class ServedBy(Versioned):
    """An answer that also names the model's size (where `anchors` is not a list of hits)."""

    anchors: int = Field(description="number of anchor pairs in that model")


def served_by(snapshot: Snapshot) -> dict[str, int]:
    """The `ServedBy` fields of an answer from `snapshot`."""
    return {"version": snapshot.version, "anchors": len(snapshot.model)}


class ClassScore(BaseModel):
    label: str
    score: float


class ClassifyResponse(ServedBy):
    label: str = Field(description='the best class, or "unknown" below the threshold')
    score: float = Field(description="the best class's score <r(x), r(y)>")
    top: list[ClassScore] = Field(description="the best classes, best first")


class AnchorContribution(BaseModel):
    anchor_id: str
    caption: str
    url: str | None
    contribution: float = Field(description="r_i(x) * r_i(y)")
    image_weight: float = Field(description="r_i(x)")
    text_weight: float = Field(description="r_i(y)")


class ExplainResponse(Versioned):
    anchors: list[AnchorContribution]
    label: str
    prompt: str = Field(description="the prompt (or class mean) that gave the label its score")
    score: float


class RankedCaption(BaseModel):
    caption: str
    score: float


class CaptionsResponse(ServedBy):
    source: str = Field(description='"candidates" (the given captions) or "anchors"')
    captions: list[RankedCaption]


class AnchorHit(BaseModel):
    anchor_id: str
    caption: str
    url: str | None
    weight: float = Field(description="the anchor's entry in the query's relative representation")


class AnchorsRequest(BaseModel):
    text: str = Field(min_length=1, description="the query text")
    top: int = Field(5, ge=1, le=1000)


class AnchorsResponse(Versioned):
    anchors: list[AnchorHit]


class AnchorResponse(Versioned):
    anchor_id: str
    caption: str | None
    url: str | None
    width: int | None = Field(description="the source image's width in pixels")
    height: int | None = Field(description="the source image's height in pixels")
    shard: str | None = Field(description="the download shard the pair came from")
    thumbnail: bool = Field(description="whether GET /anchors/{id}/thumbnail has an image")


class EvaluationRow(BaseModel):
    """One stored evaluation of a table version (the `evaluations` table's columns)."""

    table_version: int
    table_tags: str | None
    benchmark: str
    task: str | None
    split: str | None
    n_images: int | None
    k: int | None
    p: float | None
    strategy: str | None
    acc1: float | None
    acc5: float | None
    mean_per_class_recall: float | None
    image_retrieval_recall_at_1: float | None
    text_retrieval_recall_at_1: float | None
    evaluated_at: datetime | None


class EvaluationsResponse(BaseModel):
    evaluations: list[EvaluationRow] = Field(description="newest first")


class HealthResponse(BaseModel):
    status: str
    version: int
    watcher_error: str | None = None


class VersionResponse(ServedBy):
    table: str = Field(
        description="where the table is: an object-store URI without credentials or query, "
        "or a local folder by its name only"
    )
    name: str
    tag: str | None = Field(description="the tag the service is pinned to, if any")
    tags: list[str] = Field(description="the tags pointing at the served version")
    pinned: bool
    image_encoder: str
    text_encoder: str
    k: int
    p: float
    precision: str
    approximate: bool
    thumbnails: bool = Field(description="whether this version keeps anchor thumbnails")
    update: str = Field(description='how this version was loaded: "full" or "incremental"')
    update_seconds: float
    loaded_at: datetime


class ErrorResponse(BaseModel):
    detail: str
