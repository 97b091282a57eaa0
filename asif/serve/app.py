"""The FastAPI query service over a live ASIF model (`create_app`).

Every handler takes the live model's current snapshot once and answers from it alone, so a
new table version swapped in meanwhile never changes an answer half-way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import numpy as np
from fastapi import FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import JSONResponse
from PIL import Image

from asif.encoders.images import decode_image
from asif.errors import AsifError, ImageDecodeError
from asif.model.zero_shot import DEFAULT_TEMPLATES, STRATEGIES, Strategy, ZeroShotClassifier
from asif.serve import schemas
from asif.serve.live_model import LiveModel, Snapshot
from asif.serve.watcher import TableWatcher

DEFAULT_MAX_UPLOAD = 10 * 1024 * 1024
CLASSIFIER_CACHE = 256  # label sets whose prompt representations each snapshot keeps
ERRORS = {c: {"model": schemas.ErrorResponse} for c in (400, 413, 415, 422)}

ImageFile = Annotated[UploadFile, File(description="the image file (JPEG, PNG, ...)")]
Labels = Annotated[
    list[str], Form(description="class names: repeat the field or separate them with commas")
]
Templates = Annotated[
    list[str] | None, Form(description="prompt templates with {} for the class name")
]


def _labels(labels: list[str]) -> list[str]:
    names = [s.strip() for item in labels for s in item.split(",")]
    if not any(names):
        raise HTTPException(422, "labels are empty: give at least one class name")
    if not all(names):
        raise HTTPException(422, f"labels contain an empty class name: {labels}")
    return names


def create_app(
    live: LiveModel,
    *,
    watch_interval: float | None = 1.0,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD,
) -> FastAPI:
    """The service; unless the model is pinned, it polls the table every `watch_interval` s."""
    watcher = None
    if watch_interval and not live.pinned:
        watcher = TableWatcher(live, watch_interval)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if watcher:
            watcher.start()
        yield
        if watcher:
            watcher.stop()

    app = FastAPI(
        title="ASIF query service",
        description="Zero-shot classification, explanations and retrieval with a training-free "
        "ASIF model whose anchors live in a versioned LanceDB table.",
        lifespan=lifespan,
    )
    app.state.live = live

    @app.exception_handler(AsifError)
    async def asif_error(request: Request, exc: AsifError) -> JSONResponse:
        status = 415 if isinstance(exc, ImageDecodeError) else 422
        return JSONResponse({"detail": str(exc)}, status_code=status)

    def read_image(upload: UploadFile) -> Image.Image:
        data = upload.file.read(max_upload_bytes + 1)
        name = upload.filename or "upload"
        if len(data) > max_upload_bytes:
            raise HTTPException(
                413, f"image {name!r} is larger than the {max_upload_bytes}-byte upload limit"
            )
        if not data:
            raise HTTPException(400, f"image {name!r} is empty (0 bytes)")
        return decode_image(data, source=f"uploaded file {name!r}")

    def served(snap: Snapshot) -> dict:
        return {"version": snap.version, "anchors": len(snap.model)}

    def classifier(
        snap: Snapshot, labels: list[str], templates: list[str] | None, strategy: str
    ) -> ZeroShotClassifier:
        """The snapshot's classifier for these labels, cached (prompts are embedded once)."""
        if strategy not in STRATEGIES:
            raise HTTPException(422, f"strategy must be 'max' or 'mean', got {strategy!r}")
        names, templates = _labels(labels), templates or list(DEFAULT_TEMPLATES)
        bad = [t for t in templates if "{}" not in t]
        if bad:
            raise HTTPException(422, f"templates need a '{{}}' where the class name goes: {bad}")
        key = (tuple(names), tuple(templates), strategy)
        cache = snap.classifiers
        if key not in cache:
            if len(cache) >= CLASSIFIER_CACHE:
                cache.clear()
            chosen: Strategy = strategy  # type: ignore[assignment]
            cache[key] = snap.model.zero_shot_classifier(names, templates, chosen)
        return cache[key]

    @app.post("/classify", response_model=schemas.ClassifyResponse, responses=ERRORS)
    def classify(
        image: ImageFile,
        labels: Labels,
        templates: Templates = None,
        strategy: Annotated[str, Form(description='"max" or "mean" over templates')] = "max",
        threshold: Annotated[float | None, Form(description='"unknown" below this')] = None,
        top: Annotated[int, Form(ge=1, le=100)] = 5,
    ) -> dict:
        """Zero-shot label of an uploaded image among `labels`."""
        snap = live.snapshot
        picture = read_image(image)
        clf = classifier(snap, labels, templates, strategy)
        pred = snap.model.classify_embeddings(snap.model.embed_images([picture]), clf, threshold)
        scores = pred.scores[0]
        best = pred.topk(top)[0]
        return {
            **served(snap),
            "label": pred.labels[0],
            "score": float(scores.max()),
            "top": [{"label": clf.class_names[c], "score": float(scores[c])} for c in best],
        }

    @app.post("/explain", response_model=schemas.ExplainResponse, responses=ERRORS)
    def explain(
        image: ImageFile,
        labels: Labels,
        templates: Templates = None,
        strategy: Annotated[str, Form()] = "max",
        label: Annotated[str | None, Form(description="default: the predicted class")] = None,
        top: Annotated[int, Form(ge=1, le=100)] = 5,
    ) -> dict:
        """The anchor pairs that contributed most to an image's label."""
        snap = live.snapshot
        picture = read_image(image)
        clf = classifier(snap, labels, templates, strategy)
        if label is not None and label not in clf.class_names:
            raise HTTPException(422, f"label {label!r} is not one of the labels {clf.class_names}")
        emb = snap.model.embed_images([picture])[0]
        ex = snap.model.explain_embedding(emb, clf, label, top)
        return {
            **served(snap),
            "label": ex.label,
            "prompt": ex.prompt,
            "score": ex.score,
            "anchors": [vars(a) for a in ex.anchors],
        }

    @app.post("/retrieve/captions", response_model=schemas.CaptionsResponse, responses=ERRORS)
    def retrieve_captions(
        image: ImageFile,
        captions: Annotated[
            list[str] | None,
            Form(description="candidate captions to rank; without them, the anchors' captions"),
        ] = None,
        top: Annotated[int, Form(ge=1, le=1000)] = 5,
    ) -> dict:
        """The captions that best describe an image: the given candidates ranked by ASIF score,
        or the captions of the anchors whose images are most like it (largest r_i(x))."""
        snap = live.snapshot
        model = snap.model
        emb = model.embed_images([read_image(image)])
        candidates = [c for c in captions or [] if c.strip()]
        if captions and not candidates:
            raise HTTPException(422, "the candidate captions are all empty")
        if candidates:
            order, scores = model.retrieve_embeddings(
                emb, model.embed_texts(candidates), "image", top
            )
            ranked = [(candidates[i], s) for i, s in zip(order[0], scores[0], strict=True)]
            return {**served(snap), "source": "candidates", "captions": _ranked(ranked)}
        rel = model.image_relative(emb)
        hits = _top_entries(rel.indices[0], rel.values[0], top)
        ranked = [(model.anchors.captions[i], v) for i, v in hits]
        return {**served(snap), "source": "anchors", "captions": _ranked(ranked)}

    @app.post("/retrieve/anchors", response_model=schemas.AnchorsResponse, responses=ERRORS)
    def retrieve_anchors(query: schemas.AnchorsRequest) -> dict:
        """The anchor pairs whose captions are most like a text (largest r_i(y))."""
        if not query.text.strip():
            raise HTTPException(422, "the query text is blank")
        snap = live.snapshot
        model = snap.model
        rel = model.text_relative(model.embed_texts([query.text]))
        a = model.anchors
        hits = [
            {"anchor_id": a.ids[i], "caption": a.captions[i], "url": a.urls[i], "weight": v}
            for i, v in _top_entries(rel.indices[0], rel.values[0], query.top)
        ]
        return {**served(snap), "anchors": hits}

    @app.get("/health", response_model=schemas.HealthResponse)
    def health() -> dict:
        """Liveness: the served version, and the watcher's last error if updating fails."""
        return {
            "status": "ok",
            "version": live.snapshot.version,
            "watcher_error": watcher.last_error if watcher else None,
        }

    @app.get("/version", response_model=schemas.VersionResponse)
    def version() -> dict:
        """Which table, version and settings the model being served comes from."""
        snap = live.snapshot
        model = snap.model
        return {
            **served(snap),
            "table": live.uri,
            "name": live.name,
            "tag": live.tag,
            "pinned": live.pinned,
            "image_encoder": model.image_encoder_name,
            "text_encoder": model.text_encoder_name,
            "k": model.k,
            "p": model.p,
            "precision": live.precision,
            "approximate": live.approximate,
            "update": snap.how,
            "update_seconds": snap.seconds,
            "loaded_at": snap.loaded_at,
        }

    return app


def _top_entries(indices: np.ndarray, values: np.ndarray, top: int) -> list[tuple[int, float]]:
    """The `top` largest positive entries of one sparse row, best first."""
    order = np.argsort(-values, kind="stable")[:top]
    return [(int(indices[i]), float(values[i])) for i in order if values[i] > 0]


def _ranked(pairs: list[tuple[str, float]]) -> list[dict]:
    return [{"caption": c, "score": float(s)} for c, s in pairs]
