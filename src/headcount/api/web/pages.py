"""HTML routes: render the first paint from the service layer; scripts keep it live."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from headcount.api.auth import RuntimeDep
from headcount.api.web import places
from headcount.capacity import events, snapshot
from headcount.domain.errors import NotFound

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")

# Scripts are same-origin files; the token lives in sessionStorage, and `?token=` must not
# leak to other origins through Referer.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
POLL_MS = 2000
CHART_MINUTES = 10


def _render(
    request: Request, name: str, context: dict[str, Any], status: int = 200
) -> HTMLResponse:
    response = templates.TemplateResponse(request, name, context, status_code=status)
    response.headers.update(SECURITY_HEADERS)
    return response


async def _page(rt: RuntimeDep, request: Request, event_id: str, name: str) -> HTMLResponse:
    try:
        event = await events.get_event(rt, event_id)
        capacity = await snapshot.capacity_snapshot(rt, event_id)
    except NotFound as exc:
        return _render(request, "not_found.html", {"detail": exc.detail}, status=404)
    return _render(
        request,
        name,
        {
            "event": event,
            "capacity": capacity,
            "place_kinds": places.kinds(),
            "place_cards": places.cards(capacity),
            "place_config": places.described(),
            "poll_ms": POLL_MS,
            "chart_minutes": CHART_MINUTES,
        },
    )


@router.get("/events/{event_id}", response_class=HTMLResponse)
async def event_page(rt: RuntimeDep, request: Request, event_id: str) -> HTMLResponse:
    return await _page(rt, request, event_id, "event.html")


@router.get("/events/{event_id}/scanner", response_class=HTMLResponse)
async def scanner(
    rt: RuntimeDep, request: Request, event_id: str, area: str | None = None
) -> HTMLResponse:
    """The door's scanner (phone width): `?area=` preselects the gate's area."""
    try:
        event = await events.get_event(rt, event_id)
        capacity = await snapshot.capacity_snapshot(rt, event_id)
    except NotFound as exc:
        return _render(request, "not_found.html", {"detail": exc.detail}, status=404)
    context = {"event": event, "capacity": capacity, "selected": area}
    return _render(request, "scanner.html", context)


@router.get("/events/{event_id}/dashboard", response_class=HTMLResponse)
async def dashboard(rt: RuntimeDep, request: Request, event_id: str) -> HTMLResponse:
    return await _page(rt, request, event_id, "dashboard.html")
