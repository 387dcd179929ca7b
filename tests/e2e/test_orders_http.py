"""The REST contract over a real server: auth, problems, idempotency, bad input."""

from __future__ import annotations

import httpx
import pytest

from headcount.domain.identity import Role
from support.api import client, create_event_with_stock
from support.auth import bearer
from support.servers import Server

PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, object] = response.json()
    assert body["code"] == code
    assert body["status"] == status
    assert isinstance(body["title"], str)
    assert isinstance(body["detail"], str)
    assert str(body["type"]).endswith(code)
    return body


async def available(http: httpx.AsyncClient, tt: str) -> int:
    body = (await http.get(f"/api/v1/ticket-types/{tt}")).json()
    return int(body["quantity_available"])


async def test_order_lifecycle_over_http(server: Server) -> None:
    async with client(server.base_url) as http:
        event_id, (tt,) = await create_event_with_stock(http, 5)
        buyer = bearer("http-buyer")
        made = await http.post(
            "/api/v1/orders",
            json={"event_id": event_id, "items": [{"ticket_type_id": tt, "quantity": 2}]},
            headers=buyer,
        )
        assert made.status_code == 201, made.text
        order = made.json()
        assert order["status"] == "pending"
        assert await available(http, tt) == 3
        assert (await http.get(f"/api/v1/orders/{order['id']}", headers=buyer)).json() == order
        paid = await http.post(
            f"/api/v1/orders/{order['id']}/confirm", headers=bearer("org-e2e", Role.ORGANIZER)
        )
        assert paid.json()["status"] == "paid"
        snapshot = (await http.get(f"/api/v1/events/{event_id}/capacity")).json()
        assert snapshot["tickets"]["sold"] == 2
        assert snapshot["tickets"]["available"] == 3


async def test_sold_out_is_a_problem_naming_the_ticket_type(server: Server) -> None:
    async with client(server.base_url) as http:
        event_id, (tt,) = await create_event_with_stock(http, 1)
        body = {"event_id": event_id, "items": [{"ticket_type_id": tt, "quantity": 2}]}
        refused = await http.post("/api/v1/orders", json=body, headers=bearer("greedy"))
        problem = assert_problem(refused, 409, "sold_out")
        assert problem["ticket_type_id"] == tt
        assert await available(http, tt) == 1


async def test_idempotency_key_over_http(server: Server) -> None:
    async with client(server.base_url) as http:
        event_id, (tt,) = await create_event_with_stock(http, 10)
        body = {"event_id": event_id, "items": [{"ticket_type_id": tt, "quantity": 1}]}
        headers = {**bearer("retrier"), "Idempotency-Key": "checkout-42"}
        first = await http.post("/api/v1/orders", json=body, headers=headers)
        second = await http.post("/api/v1/orders", json=body, headers=headers)
        assert first.status_code == second.status_code == 201
        assert first.json() == second.json()
        assert await available(http, tt) == 9
        changed = {**body, "items": [{"ticket_type_id": tt, "quantity": 2}]}
        reused = await http.post("/api/v1/orders", json=changed, headers=headers)
        assert_problem(reused, 422, "idempotency_key_reused")
        assert await available(http, tt) == 9


async def test_auth_is_required_and_checked(server: Server) -> None:
    async with client(server.base_url) as http:
        event_id, (tt,) = await create_event_with_stock(http, 3)
        body = {"event_id": event_id, "items": [{"ticket_type_id": tt, "quantity": 1}]}
        assert_problem(await http.post("/api/v1/orders", json=body), 401, "unauthorized")
        bad = {"Authorization": "Bearer not.a.token"}
        assert_problem(
            await http.post("/api/v1/orders", json=body, headers=bad), 401, "unauthorized"
        )
        attendee_tries = await http.post(
            "/api/v1/events", json={"name": "Mine now"}, headers=bearer("sneaky")
        )
        assert_problem(attendee_tries, 403, "forbidden")
        other_org = await http.patch(
            f"/api/v1/events/{event_id}",
            json={"name": "Hijacked"},
            headers=bearer("org-other", Role.ORGANIZER),
        )
        assert_problem(other_org, 403, "forbidden")
        assert (await http.get(f"/api/v1/events/{event_id}")).json()["name"] == "E2E"
        mine = await http.post("/api/v1/orders", json=body, headers=bearer("owner"))
        peek = await http.get(f"/api/v1/orders/{mine.json()['id']}", headers=bearer("stranger"))
        assert_problem(peek, 404, "not_found")
        assert await available(http, tt) == 2


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"items": [{"ticket_type_id": "TT", "quantity": -1}]}, 422, "invalid_quantity"),
        ({"items": [{"ticket_type_id": "TT", "quantity": 0}]}, 422, "invalid_quantity"),
        ({"items": [{"ticket_type_id": "TT", "quantity": 10**12}]}, 422, "invalid_quantity"),
        ({"items": [{"ticket_type_id": "TT", "quantity": 1.5}]}, 422, "invalid_quantity"),
        ({"items": [{"ticket_type_id": "TT", "quantity": "two"}]}, 422, "invalid_quantity"),
        ({"items": []}, 422, "invalid_request"),
        ({"items": "everything"}, 422, "invalid_request"),
        ({"items": [{"ticket_type_id": "tt_unknown", "quantity": 1}]}, 404, "not_found"),
        ({"items": [{"ticket_type_id": "x" * 500, "quantity": 1}]}, 422, "invalid_request"),
        (
            {"items": [{"ticket_type_id": "TT", "quantity": 1}], "extra": True},
            422,
            "invalid_request",
        ),
    ],
)
async def test_bad_orders_get_a_clear_4xx_and_change_nothing(
    server: Server, payload: dict[str, object], status: int, code: str
) -> None:
    async with client(server.base_url) as http:
        event_id, (tt,) = await create_event_with_stock(http, 4)
        body = {"event_id": event_id, **payload}
        raw = httpx.Response(200, json=body).text.replace('"TT"', f'"{tt}"')
        refused = await http.post(
            "/api/v1/orders",
            content=raw,
            headers={**bearer("fuzzy"), "Content-Type": "application/json"},
        )
        assert_problem(refused, status, code)
        assert await available(http, tt) == 4


async def test_malformed_and_oversized_bodies(server: Server) -> None:
    async with client(server.base_url) as http:
        headers = {**bearer("fuzzy"), "Content-Type": "application/json"}
        assert_problem(
            await http.post("/api/v1/orders", content=b'{"event_id": ', headers=headers),
            400,
            "malformed_request",
        )
        huge = b'{"event_id": "' + b"x" * (256 * 1024) + b'"}'
        assert_problem(
            await http.post("/api/v1/orders", content=huge, headers=headers),
            413,
            "payload_too_large",
        )
        assert_problem(await http.get("/api/v1/orders/%00%01"), 401, "unauthorized")
        assert_problem(
            await http.get("/api/v1/orders/ord_missing", headers=bearer("fuzzy")), 404, "not_found"
        )
        assert_problem(await http.get("/api/v1/ticket-types/../../etc"), 404, "not_found")
        assert_problem(await http.get("/api/v1/nowhere"), 404, "not_found")
        assert_problem(await http.delete("/api/v1/events"), 405, "method_not_allowed")


async def test_operations_endpoints(server: Server) -> None:
    async with client(server.base_url) as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        ready = await http.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["database"] == "ok"
        event_id, (tt,) = await create_event_with_stock(http, 1)
        body = {"event_id": event_id, "items": [{"ticket_type_id": tt, "quantity": 2}]}
        await http.post("/api/v1/orders", json=body, headers=bearer("metric"))
        text = (await http.get("/metrics")).text
        assert 'headcount_orders_refused_total{code="sold_out"}' in text
        assert "headcount_http_request_duration_seconds_bucket" in text
        assert 'route="/api/v1/orders"' in text
        openapi = (await http.get("/openapi.json")).json()
        assert "/api/v1/orders" in openapi["paths"]
