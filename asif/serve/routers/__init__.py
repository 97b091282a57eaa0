"""The service's endpoints, one router per group: zero-shot, retrieval, anchors, evaluations,
status, and the web page."""

from fastapi import APIRouter

from asif.serve.routers import anchors, evaluations, page, retrieval, status, zero_shot

ROUTERS: tuple[APIRouter, ...] = (
    zero_shot.router,
    retrieval.router,
    anchors.router,
    evaluations.router,
    status.router,
    page.router,
)
