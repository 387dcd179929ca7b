"""The pool routes over HTTP: the contract's shapes, problem codes, and bad input."""

from __future__ import annotations

import httpx
import pytest

from headcount.domain.identity import Role
from support.api import create_event_with_stock
from support.auth import bearer
from support.servers import Server

ORG = bearer("org-pools-http", Role.ORGANIZER)
TT = {"name": "T", "quantity_total": 5}


async def _pool(http: httpx.AsyncClient, event_id: str, **body: object) -> httpx.Response:
    return await http.post(f"/events/{event_id}/pools", json={"name": "Hall", **body}, headers=ORG)


async def test_pool_lifecycle_and_problem_codes(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as root:
        event_id, (a, b) = await create_event_with_stock(root, 5, 5, organizer="org-pools-http")
    async with httpx.AsyncClient(base_url=server.base_url + "/api/v1", timeout=30) as http:
        made = await _pool(http, event_id, capacity=3, ticket_type_ids=[a])
        assert made.status_code == 201, made.text
        pool = made.json()
        assert (pool["capacity"], pool["admission_limit"], pool["ticket_type_ids"]) == (3, 3, [a])
        attached = await http.put(f"/pools/{pool['id']}/ticket-types/{b}", headers=ORG)
        assert attached.status_code == 200
        assert sorted(attached.json()["ticket_type_ids"]) == sorted([a, b])
        listed = await http.get(f"/events/{event_id}/pools")
        assert [p["id"] for p in listed.json()] == [pool["id"]]
        seen = (await http.get(f"/ticket-types/{b}")).json()
        assert (seen["quantity_available"], seen["pool_ids"]) == (3, [pool["id"]])

        order = {"event_id": event_id, "items": [{"ticket_type_id": a, "quantity": 2}]}
        assert (await http.post("/orders", json=order, headers=bearer("p1"))).status_code == 201
        short = {"event_id": event_id, "items": [{"ticket_type_id": b, "quantity": 2}]}
        refused = await http.post("/orders", json=short, headers=bearer("p2"))
        assert refused.status_code == 409
        assert refused.headers["content-type"].startswith("application/problem+json")
        problem = refused.json()
        assert (problem["code"], problem["pool_id"]) == ("pool_exhausted", pool["id"])

        lowered = await http.patch(f"/pools/{pool['id']}", json={"capacity": 1}, headers=ORG)
        assert lowered.status_code == 200
        assert (lowered.json()["over_capacity_by"], lowered.json()["quantity_used"]) == (1, 2)
        limited = await http.patch(f"/ticket-types/{b}", json={"max_per_customer": 1}, headers=ORG)
        assert limited.json()["max_per_customer"] == 1
        await http.patch(f"/pools/{pool['id']}", json={"capacity": 10}, headers=ORG)
        one = {"event_id": event_id, "items": [{"ticket_type_id": b, "quantity": 1}]}
        assert (await http.post("/orders", json=one, headers=bearer("p3"))).status_code == 201
        again = await http.post("/orders", json=one, headers=bearer("p3"))
        assert (again.status_code, again.json()["code"]) == (409, "customer_limit_reached")
        detached = await http.delete(f"/pools/{pool['id']}/ticket-types/{a}", headers=ORG)
        assert detached.json()["ticket_type_ids"] == [b]


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("post", "/events/{event}/pools", {"name": "P", "capacity": -1}, 422),
        ("post", "/events/{event}/pools", {"name": "P", "overbook_ratio": -1}, 422),
        ("post", "/events/{event}/pools", {"name": "P", "capacity": "ten"}, 422),
        ("post", "/events/{event}/pools", {"name": "", "capacity": 1}, 422),
        ("post", "/events/{event}/pools", {"name": "P", "ticket_type_ids": ["tt_nope"]}, 404),
        ("post", "/events/evt_missing/pools", {"name": "P"}, 404),
        ("get", "/pools/pool_missing", None, 404),
        ("get", "/pools/../../etc", None, 404),
        ("patch", "/pools/pool_missing", {"capacity": 3}, 404),
        ("put", "/pools/pool_missing/ticket-types/tt_missing", None, 404),
        ("post", "/events/{event}/ticket-types", {**TT, "min_per_order": 0}, 422),
        (
            "post",
            "/events/{event}/ticket-types",
            {**TT, "min_per_order": 3, "max_per_order": 2},
            422,
        ),
    ],
)
async def test_bad_input_is_a_clear_4xx_and_changes_nothing(
    server: Server, method: str, path: str, body: object, status: int
) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as root:
        event_id, _ = await create_event_with_stock(root, 5, organizer="org-pools-http")
    async with httpx.AsyncClient(base_url=server.base_url + "/api/v1", timeout=30) as http:
        url = path.format(event=event_id)
        answer = await http.request(method.upper(), url, json=body, headers=ORG)
        assert answer.status_code == status, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert (await http.get(f"/events/{event_id}/pools")).json() == []
        assert len((await http.get(f"/events/{event_id}/ticket-types")).json()) == 1
