"""Registrations, sessions and waitlists over real HTTP: the REST contract and its problems."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from headcount.domain.identity import Role
from support.api import client, create_session
from support.auth import bearer
from support.servers import Server

ORG = bearer("org-att", Role.ORGANIZER)


@pytest.fixture
async def http(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with client(server.base_url) as c:
        yield c


async def make_event(http: httpx.AsyncClient, **fields: object) -> str:
    made = await http.post("/api/v1/events", json={"name": "Att", **fields}, headers=ORG)
    assert made.status_code == 201, made.text
    event_id: str = made.json()["id"]
    return event_id


def assert_problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == code
    assert body["status"] == status
    assert {"type", "title", "detail"} <= body.keys()


async def test_registration_cap_over_http(http: httpx.AsyncClient) -> None:
    event_id = await make_event(http, max_attendees=3)
    url = f"/api/v1/events/{event_id}/registrations"
    first = await http.post(url, json={"party_size": 2}, headers=bearer("ra"))
    assert first.status_code == 201, first.text
    again = await http.post(url, json={"party_size": 2}, headers=bearer("ra"))
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert (await http.post(url, headers=bearer("rb"))).status_code == 201  # no body: party of 1
    assert_problem(await http.post(url, headers=bearer("rc")), 409, "event_full")
    summary = (await http.get(f"/api/v1/events/{event_id}/capacity")).json()["registrations"]
    assert summary == {"max_attendees": 3, "registered": 3, "remaining": 0, "is_full": True}

    cancelled = await http.delete(f"{url}/me", headers=bearer("ra"))
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert (await http.post(url, headers=bearer("rc"))).status_code == 201
    assert_problem(await http.delete(f"{url}/me", headers=bearer("nobody")), 404, "not_found")


async def test_bad_registration_input_is_4xx_and_changes_nothing(http: httpx.AsyncClient) -> None:
    event_id = await make_event(http, max_attendees=5)
    url = f"/api/v1/events/{event_id}/registrations"
    assert_problem(await http.post(url, json={"party_size": 2}), 401, "unauthorized")
    for body in ({"party_size": 0}, {"party_size": 11}, {"party_size": "two"}, {"x": 1}):
        response = await http.post(url, json=body, headers=bearer("bad"))
        assert response.status_code == 422, (body, response.text)
    garbled = await http.post(
        url, content=b"{not json", headers={**bearer("bad"), "content-type": "application/json"}
    )
    assert_problem(garbled, 400, "malformed_request")
    assert_problem(
        await http.post("/api/v1/events/evt_missing/registrations", headers=bearer("bad")),
        404,
        "not_found",
    )
    summary = (await http.get(f"{url}/summary")).json()
    assert summary["registered"] == 0


async def test_sessions_rsvp_waitlist_and_idempotency_over_http(
    http: httpx.AsyncClient,
) -> None:
    event_id = await make_event(http)
    sid = await create_session(http, event_id, ORG, title="Lab", max_participants=1)
    rsvp = f"/api/v1/sessions/{sid}/rsvp"
    assert_problem(await http.post(rsvp, headers=bearer("sa")), 403, "not_registered")
    for who in ("sa", "sb", "sc"):
        reg = await http.post(f"/api/v1/events/{event_id}/registrations", headers=bearer(who))
        assert reg.status_code == 201

    keyed = {**bearer("sa"), "Idempotency-Key": "rsvp-1"}
    first = await http.post(rsvp, headers=keyed)
    assert first.json() == (await http.post(rsvp, headers=keyed)).json()
    assert first.json()["status"] == "confirmed"
    waiting = (await http.post(rsvp, headers=bearer("sb"))).json()
    assert (waiting["status"], waiting["position"]) == ("waitlisted", 1)
    assert (await http.post(rsvp, headers=bearer("sc"))).json()["position"] == 2

    me = await http.get(f"/api/v1/sessions/{sid}/waitlist/me", headers=bearer("sc"))
    assert (me.json()["status"], me.json()["position"]) == ("waiting", 2)
    assert_problem(
        await http.get(f"/api/v1/sessions/{sid}/waitlist", headers=bearer("sc")), 403, "forbidden"
    )
    listing = (await http.get(f"/api/v1/sessions/{sid}/waitlist", headers=ORG)).json()
    assert [e["attendee_id"] for e in listing["entries"]] == ["sb", "sc"]

    left = await http.delete(rsvp, headers=bearer("sa"))
    assert left.json()["status"] == "none"
    promoted = (await http.get(rsvp, headers=bearer("sb"))).json()
    assert promoted["status"] == "confirmed"
    assert promoted["waitlist_entry"]["status"] == "promoted"
    session = (await http.get(f"/api/v1/sessions/{sid}")).json()
    assert (session["current_attendance"], session["waitlist_length"]) == (1, 1)
    snapshot = (await http.get(f"/api/v1/events/{event_id}/capacity")).json()
    assert [s["id"] for s in snapshot["sessions"]] == [sid]

    closed = await http.post(
        f"/api/v1/events/{event_id}/sessions",
        json={"title": "Closed", "max_participants": 0, "waitlist_enabled": False},
        headers=ORG,
    )
    assert_problem(
        await http.post(f"/api/v1/sessions/{closed.json()['id']}/rsvp", headers=bearer("sa")),
        409,
        "session_full",
    )
    bad = await http.post(
        f"/api/v1/events/{event_id}/sessions",
        json={"title": "Bad", "max_participants": -1},
        headers=ORG,
    )
    assert bad.status_code == 422
    assert_problem(
        await http.post("/api/v1/sessions/ses_nope/rsvp", headers=bearer("sa")), 404, "not_found"
    )


async def test_ticket_waitlist_offer_over_http(http: httpx.AsyncClient) -> None:
    event_id = await make_event(http)
    tt = await http.post(
        f"/api/v1/events/{event_id}/ticket-types",
        json={"name": "GA", "quantity_total": 1},
        headers=ORG,
    )
    tid = tt.json()["id"]
    order = await http.post(
        "/api/v1/orders",
        json={"event_id": event_id, "items": [{"ticket_type_id": tid, "quantity": 1}]},
        headers=bearer("ta"),
    )
    assert order.status_code == 201
    joined = await http.post(
        f"/api/v1/ticket-types/{tid}/waitlist", json={"quantity": 1}, headers=bearer("tb")
    )
    assert joined.status_code == 201, joined.text
    assert (joined.json()["status"], joined.json()["position"]) == ("waiting", 1)
    await http.post(f"/api/v1/orders/{order.json()['id']}/cancel", headers=bearer("ta"))
    mine = (await http.get(f"/api/v1/ticket-types/{tid}/waitlist/me", headers=bearer("tb"))).json()
    assert (mine["status"], mine["offered_quantity"]) == ("offered", 1)
    taken = await http.post(
        "/api/v1/orders",
        json={"event_id": event_id, "items": [{"ticket_type_id": tid, "quantity": 1}]},
        headers=bearer("tb"),
    )
    assert taken.status_code == 201
    feed = await http.get(f"/api/v1/events/{event_id}/waitlist-entries/me", headers=bearer("tb"))
    assert [(e["status"], e["order_id"]) for e in feed.json()] == [("accepted", taken.json()["id"])]
    assert_problem(
        await http.post(
            f"/api/v1/ticket-types/{tid}/waitlist", json={"quantity": 0}, headers=bearer("tc")
        ),
        422,
        "invalid_quantity",
    )
