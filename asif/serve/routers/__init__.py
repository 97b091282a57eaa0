"""The service's endpoints, one router per group: zero-shot, retrieval, status."""

from fastapi import APIRouter

from asif.serve.routers import retrieval, status, zero_shot

ROUTERS: tuple[APIRouter, ...] = (zero_shot.router, retrieval.router, status.router)
