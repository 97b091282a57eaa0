"""`/classify` and `/explain`: zero-shot labels of an uploaded image, and why."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form

from asif.model.zero_shot import DEFAULT_STRATEGY
from asif.serve import schemas
from asif.serve.access import Authorized
from asif.serve.classifiers import Labels, Templates, snapshot_classifier
from asif.serve.dependencies import Batcher, Settings, Snap
from asif.serve.errors import ERRORS
from asif.serve.uploads import ImageFile, read_image

router = APIRouter(responses=ERRORS, dependencies=[Authorized])


@router.post("/classify", response_model=schemas.ClassifyResponse)
def classify(
    snap: Snap,
    settings: Settings,
    batcher: Batcher,
    image: ImageFile,
    labels: Labels,
    templates: Templates = None,
    strategy: Annotated[str, Form(description='"max" or "mean" over templates')] = DEFAULT_STRATEGY,
    threshold: Annotated[float | None, Form(description='"unknown" below this')] = None,
    top: Annotated[int, Form(ge=1, le=100)] = 5,
) -> dict[str, Any]:
    """Zero-shot label of an uploaded image among `labels`."""
    clf = snapshot_classifier(snap, labels, templates, strategy, settings)
    pred = clf.predict(batcher.embed(snap.model, read_image(image, settings)).relative, threshold)
    scores = pred.scores[0]
    best = pred.topk(top)[0]
    return {
        **schemas.served_by(snap),
        "label": pred.labels[0],
        "score": float(scores.max()),
        "top": [{"label": clf.class_names[c], "score": float(scores[c])} for c in best],
    }


@router.post("/explain", response_model=schemas.ExplainResponse)
def explain(
    snap: Snap,
    settings: Settings,
    batcher: Batcher,
    image: ImageFile,
    labels: Labels,
    templates: Templates = None,
    strategy: Annotated[str, Form()] = DEFAULT_STRATEGY,
    label: Annotated[str | None, Form(description="default: the predicted class")] = None,
    top: Annotated[int, Form(ge=1, le=100)] = 5,
) -> dict[str, Any]:
    """The anchor pairs that contributed most to an image's label."""
    clf = snapshot_classifier(snap, labels, templates, strategy, settings)
    embedded = batcher.embed(snap.model, read_image(image, settings))
    ex = snap.model.explain_relative(embedded.relative, clf, label, top)
    return {
        "version": snap.version,
        "label": ex.label,
        "prompt": ex.prompt,
        "score": ex.score,
        "anchors": [vars(a) for a in ex.anchors],
    }
