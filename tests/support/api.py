"""A small async HTTP client for the REST API, used by e2e and concurrency tests."""

from __future__ import annotations

from typing import Any

import httpx

from headcount.domain.identity import Role
from support.auth import bearer


def client(base_url: str, *, connections: int = 100, timeout: float = 60.0) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=timeout,
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
    )


async def create_event_with_stock(
    http: httpx.AsyncClient,
    *totals: int,
    organizer: str = "org-e2e",
    ticket_type: dict[str, Any] | None = None,
    **event: Any,
) -> tuple[str, list[str]]:
    """Create an event and one ticket type per total; returns (event_id, ticket_type_ids).

    `ticket_type`: extra fields for every ticket type (e.g. `{"stock_buckets": 8}`).
    """
    headers = bearer(organizer, Role.ORGANIZER)
    made = await http.post("/api/v1/events", json={"name": "E2E", **event}, headers=headers)
    assert made.status_code == 201, made.text
    event_id = made.json()["id"]
    ids = []
    for i, total in enumerate(totals):
        tt = await http.post(
            f"/api/v1/events/{event_id}/ticket-types",
            json={"name": f"Type {i}", "quantity_total": total, **(ticket_type or {})},
            headers=headers,
        )
        assert tt.status_code == 201, tt.text
        ids.append(tt.json()["id"])
    return event_id, ids


async def create_stream_event(
    http: httpx.AsyncClient,
    viewers: int | None,
    *,
    headers: dict[str, str],
    name: str = "Stream",
    path: str = "/api/v1/events",
) -> str:
    """An event whose stream admits `viewers` at once (None: no limit); returns its id."""
    settings = {"max_concurrent_viewers": viewers}
    made = await http.post(path, json={"name": name, "virtual_settings": settings}, headers=headers)
    assert made.status_code == 201, made.text
    event_id: str = made.json()["id"]
    return event_id


async def hold_order(
    http: httpx.AsyncClient,
    event_id: str,
    ticket_type_id: str,
    headers: dict[str, str],
    quantity: int = 1,
) -> str:
    """A pending order for `quantity` of one ticket type, held by the caller of `headers`;
    returns its id."""
    items = [{"ticket_type_id": ticket_type_id, "quantity": quantity}]
    made = await http.post(
        "/api/v1/orders", json={"event_id": event_id, "items": items}, headers=headers
    )
    assert made.status_code == 201, made.text
    order_id: str = made.json()["id"]
    return order_id


async def create_session(
    http: httpx.AsyncClient, event_id: str, headers: dict[str, str], **session: Any
) -> str:
    """An agenda session of the event (`title`, `max_participants`, …); returns its id."""
    made = await http.post(f"/api/v1/events/{event_id}/sessions", json=session, headers=headers)
    assert made.status_code == 201, made.text
    session_id: str = made.json()["id"]
    return session_id
