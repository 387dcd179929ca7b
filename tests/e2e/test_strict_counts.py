"""Capacities and counts are JSON integers: `true`, `"2"` and `2.0` are refused, not coerced.

Lax parsing once turned `true` into a capacity of 1; every count-like field is strict now.
Each refusal is a 422 problem, and the thing it would have created does not exist.
"""

from __future__ import annotations

import httpx
import pytest

from headcount.domain.identity import Role
from support.api import client, create_event_with_stock
from support.auth import bearer
from support.servers import Server

ORGANIZER = bearer("org-e2e", Role.ORGANIZER)
NOT_INTEGERS = [True, "2", 2.0]


async def _count(http: httpx.AsyncClient, path: str) -> int:
    listed = await http.get(path, headers=ORGANIZER)
    assert listed.status_code == 200, listed.text
    return len(listed.json())


@pytest.mark.parametrize("value", NOT_INTEGERS, ids=["true", "string", "float"])
async def test_counts_must_be_integers(server: Server, value: object) -> None:
    async with client(server.base_url) as http:
        event_id, _ = await create_event_with_stock(http, 1)
        # What an event holds is created and listed at the same path.
        held = {
            "ticket-types": {"name": "T", "quantity_total": value},
            "sessions": {"title": "S", "max_participants": value},
            "huddles": {"name": "H", "capacity": value},
            "pools": {"name": "P", "capacity": value},
        }
        under = [f"/api/v1/events/{event_id}/{kind}" for kind in held]
        cases: list[tuple[str, dict[str, object], str | None]] = [
            ("/api/v1/events", {"name": "E", "max_attendees": value}, None),
            *((path, body, path) for path, body in zip(under, held.values(), strict=True)),
        ]
        for path, body, listing in cases:
            before = await _count(http, listing) if listing else None
            refused = await http.post(path, json=body, headers=ORGANIZER)
            assert refused.status_code == 422, (path, body, refused.text)
            assert refused.headers["content-type"].startswith("application/problem+json")
            if listing:
                assert await _count(http, listing) == before, path
        registered = await http.post(
            f"/api/v1/events/{event_id}/registrations",
            json={"party_size": value},
            headers=bearer("strict-guest"),
        )
        assert registered.status_code == 422, registered.text
        mine = await http.get(
            f"/api/v1/events/{event_id}/registrations/me", headers=bearer("strict-guest")
        )
        assert mine.status_code == 404, mine.text
