"""The presence REST contract over HTTP: status codes, problem bodies, bad input."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from headcount.domain.identity import Role
from support.api import create_stream_event
from support.auth import bearer
from support.servers import Server

ORG = bearer("org-http", Role.ORGANIZER)


@pytest.fixture
async def http(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.base_url + "/api/v1", timeout=30) as client:
        yield client


async def event_with(http: httpx.AsyncClient, viewers: int | None = None) -> str:
    return await create_stream_event(http, viewers, headers=ORG, name="HTTP", path="/events")


def assert_problem(answer: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    body: dict[str, object] = answer.json()
    assert body["code"] == code
    assert {"type", "title", "status", "detail"} <= body.keys()
    return body


async def test_viewer_lease_lifecycle(http: httpx.AsyncClient) -> None:
    event_id = await event_with(http, viewers=1)
    joined = await http.post(f"/events/{event_id}/viewers", headers=bearer("ann"))
    assert joined.status_code == 201, joined.text
    lease = joined.json()
    assert (lease["kind"], lease["occupancy"], lease["limit"]) == ("viewers", 1, 1)
    body = assert_problem(
        await http.post(f"/events/{event_id}/viewers", headers=bearer("bob")),
        409,
        "viewer_limit_reached",
    )
    assert (body["limit"], body["viewers"]) == (1, 1)
    lease_path = f"/leases/{lease['lease_id']}"
    renewed = await http.post(f"{lease_path}/heartbeat", headers=bearer("ann"))
    assert renewed.status_code == 200
    assert renewed.json()["expires_at"] >= lease["expires_at"]
    assert_problem(
        await http.post(f"{lease_path}/heartbeat", headers=bearer("bob")), 404, "not_found"
    )
    assert_problem(await http.delete(lease_path, headers=bearer("bob")), 404, "not_found")
    assert_problem(await http.delete(lease_path), 401, "unauthorized")
    assert (await http.delete(lease_path, headers=bearer("ann"))).status_code == 204
    assert_problem(
        await http.post(f"{lease_path}/heartbeat", headers=bearer("ann")), 410, "lease_expired"
    )
    assert (
        await http.post(f"/events/{event_id}/viewers", headers=bearer("bob"))
    ).status_code == 201


async def test_booths_over_http(http: httpx.AsyncClient) -> None:
    event_id = await event_with(http)
    made = await http.post(
        f"/events/{event_id}/booths",
        json={"name": "Acme", "tier": "gold", "chat_enabled": False, "max_visitors": 1},
        headers=ORG,
    )
    assert made.status_code == 201, made.text
    booth = made.json()
    assert (booth["tier"], booth["chat_enabled"], booth["visitors"]) == ("gold", False, 0)
    assert_problem(
        await http.post(f"/events/{event_id}/booths", json={"name": "x"}, headers=bearer("ann")),
        403,
        "forbidden",
    )
    visit = await http.post(f"/booths/{booth['id']}/visits", headers=bearer("ann"))
    assert visit.status_code == 201
    full = assert_problem(
        await http.post(f"/booths/{booth['id']}/visits", headers=bearer("bob")), 409, "booth_full"
    )
    assert full["booth_id"] == booth["id"]
    listed = await http.get(f"/events/{event_id}/booths")
    assert [(b["id"], b["visitors"], b["is_full"]) for b in listed.json()] == [
        (booth["id"], 1, True)
    ]
    raised = await http.patch(f"/booths/{booth['id']}", json={"max_visitors": 2}, headers=ORG)
    assert raised.json()["is_full"] is False
    visits = await http.get(f"/booths/{booth['id']}/visits", headers=ORG)
    assert [v["holder"] for v in visits.json()] == ["ann"]


async def test_huddles_over_http(http: httpx.AsyncClient) -> None:
    event_id = await event_with(http)
    made = await http.post(
        f"/events/{event_id}/huddles", json={"name": "Rust", "capacity": 1}, headers=ORG
    )
    assert made.status_code == 201, made.text
    huddle_id = made.json()["id"]
    joined = await http.post(f"/huddles/{huddle_id}/join", headers=bearer("ann"))
    assert joined.status_code == 200
    assert joined.json()["joined"] is True
    full = assert_problem(
        await http.post(f"/huddles/{huddle_id}/join", headers=bearer("bob")), 409, "huddle_full"
    )
    assert full["huddle_full"] is True
    left = await http.post(f"/huddles/{huddle_id}/leave", headers=bearer("ann"))
    assert (left.json()["joined"], left.json()["huddle"]["members"]) == (False, 0)
    assert (await http.post(f"/huddles/{huddle_id}/join", headers=bearer("bob"))).status_code == 200


@pytest.mark.parametrize(
    "case",
    [
        ("post", "/events/{e}/booths", {"name": "x", "max_visitors": -1}, 422, "invalid_request"),
        (
            "post",
            "/events/{e}/booths",
            {"name": "x", "max_visitors": "lots"},
            422,
            "invalid_request",
        ),
        ("post", "/events/{e}/booths", {"name": "x", "tier": "GOLD!"}, 422, "invalid_request"),
        ("post", "/events/{e}/booths", {"name": "x", "extra": 1}, 422, "invalid_request"),
        (
            "post",
            "/events/{e}/booths",
            {"name": "x", "max_visitors": 10**12},
            422,
            "invalid_request",
        ),
        ("post", "/events/{e}/huddles", {"name": "x", "capacity": 0}, 422, "invalid_request"),
        ("post", "/events/evt_missing/booths", {"name": "x"}, 404, "not_found"),
        ("post", "/booths/bth_missing/visits", None, 404, "not_found"),
        ("post", "/booths/../../etc/visits", None, 404, "not_found"),
        ("post", "/huddles/hud_missing/join", None, 404, "not_found"),
        ("post", "/breakout-rooms/brk_missing/join", None, 404, "not_found"),
        (
            "post",
            "/sessions/ses_missing/breakout-rooms",
            {"name": "x", "capacity": 2},
            404,
            "not_found",
        ),
        ("post", "/leases/garbage/heartbeat", None, 404, "not_found"),
        ("delete", "/leases/viewers.evt_x.abcdefghijkl", None, 204, None),
        ("post", "/events/evt_missing/viewers", None, 404, "not_found"),
    ],
)
async def test_bad_input_is_a_clear_4xx(
    http: httpx.AsyncClient, case: tuple[str, str, object, int, str | None]
) -> None:
    method, path, body, status, code = case
    event_id = await event_with(http)
    answer = await http.request(
        method,
        path.replace("{e}", event_id),
        json=body,
        headers=ORG,
    )
    if code is None:
        assert answer.status_code == status
    else:
        assert_problem(answer, status, code)


async def test_malformed_json_is_400(http: httpx.AsyncClient) -> None:
    event_id = await event_with(http)
    answer = await http.post(
        f"/events/{event_id}/booths",
        content=b"{not json",
        headers={**ORG, "content-type": "application/json"},
    )
    assert_problem(answer, 400, "malformed_request")
