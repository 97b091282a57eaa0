"""`/classify` and `/explain`: zero-shot labels of an uploaded image, and why."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form

from asif.model.zero_shot import DEFAULT_STRATEGY
from asif.serve import schemas
from asif.serve.access import Authorized
from asif.serve.classifiers import Labels, Templates, snapshot_classifier
from asif.serve.dependencies import Settings, Snap
from asif.serve.errors import ERRORS
from asif.serve.uploads import ImageFile, read_image

router = APIRouter(responses=ERRORS, dependencies=[Authorized])


@router.post("/classify", response_model=schemas.ClassifyResponse)
def classify(
    snap: Snap,
    settings: Settings,
    image: ImageFile,
    labels: Labels,
    templates: Templates = None,
    strategy: Annotated[str, Form(description='"max" or "mean" over templates')] = DEFAULT_STRATEGY,
    threshold: Annotated[float | None, Form(description='"unknown" below this')] = None,
    top: Annotated[int, Form(ge=1, le=100)] = 5,
) -> dict[str, Any]:
    """Zero-shot label of an uploaded image among `labels`."""
    picture = read_image(image, settings.max_upload_bytes)
    clf = snapshot_classifier(snap, labels, templates, strategy, settings)
    pred = snap.model.classify_embeddings(snap.model.embed_images([picture]), clf, threshold)
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
    image: ImageFile,
    labels: Labels,
    templates: Templates = None,
    strategy: Annotated[str, Form()] = DEFAULT_STRATEGY,
    label: Annotated[str | None, Form(description="default: the predicted class")] = None,
    top: Annotated[int, Form(ge=1, le=100)] = 5,
) -> dict[str, Any]:
    """The anchor pairs that contributed most to an image's label."""
    picture = read_image(image, settings.max_upload_bytes)
    clf = snapshot_classifier(snap, labels, templates, strategy, settings)
    emb = snap.model.embed_images([picture])[0]
    ex = snap.model.explain_embedding(emb, clf, label, top)
    return {
        "version": snap.version,
        "label": ex.label,
        "prompt": ex.prompt,
        "score": ex.score,
        "anchors": [vars(a) for a in ex.anchors],
    }
