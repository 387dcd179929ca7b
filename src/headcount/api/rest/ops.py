"""Liveness, readiness and metrics for the platform's orchestrator and Prometheus."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from headcount.api.auth import RuntimeDep

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up; says nothing about its dependencies."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"content": {"application/problem+json": {}}}})
async def readyz(rt: RuntimeDep) -> dict[str, str]:
    """Ready to serve: the database answers (and Redis, when configured)."""
    await rt.db.ping()
    checks = {"database": "ok"}
    if rt.presence is not None and hasattr(rt.presence, "ping"):
        await rt.presence.ping()
        checks["presence"] = "ok"
    return {"status": "ok", **checks}


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
