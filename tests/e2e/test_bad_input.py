"""Bad input over HTTP: every mistake gets a clear 4xx problem, and changes nothing.

Complements `test_orders_http.py` (the order body's own mistakes) with: quantities on
every mutation that takes one, unknown and malformed ids on every path of the published
schema, wrong content types, oversized and streamed bodies, unicode and long strings,
and duplicate or conflicting idempotency keys. After each refusal the state is read back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx

from headcount.domain.identity import Role
from support.api import client, create_event_with_stock, create_session
from support.auth import bearer
from support.servers import Server

PROBLEM = "application/problem+json"
ORG = bearer("org-e2e", Role.ORGANIZER)

# Not a limit: negative, absurdly large, fractional, text, a list, an object. (0 is a
# valid limit, "closed"; null clears an optional one; a numeric string is coerced.)
BAD_LIMITS: list[Any] = [-1, 10**12, 10**40, 1.5, "many", [], {}]
# Not an amount to ask for: all of the above, and zero and null.
BAD_AMOUNTS: list[Any] = [*BAD_LIMITS, 0, None]


def is_problem(response: httpx.Response, *statuses: int) -> bool:
    return (
        response.status_code in statuses
        and response.headers.get("content-type", "").startswith(PROBLEM)
        and isinstance(response.json().get("code"), str)
    )


async def state_of(http: httpx.AsyncClient, event_id: str) -> dict[str, Any]:
    """Everything an event's capacity consists of, read back over the API."""
    capacity = await http.get(f"/api/v1/events/{event_id}/capacity")
    assert capacity.status_code == 200, capacity.text
    types = await http.get(f"/api/v1/events/{event_id}/ticket-types")
    event = await http.get(f"/api/v1/events/{event_id}")
    orders = await http.get("/api/v1/orders", params={"event_id": event_id}, headers=ORG)
    snapshot = capacity.json()
    for stamp in ("taken_at", "as_of"):  # when it was read, not what it says
        snapshot.pop(stamp, None)
    return {
        "capacity": snapshot,
        "types": types.json(),
        "event": event.json(),
        "orders": orders.json(),
    }


async def test_bad_counts_on_every_mutation_that_takes_one(server: Server) -> None:
    async with client(server.base_url) as http:
        event_id, (tt,) = await create_event_with_stock(http, 10)
        session_id = await create_session(http, event_id, ORG, title="Talk", max_participants=5)
        buyer = bearer("counts-buyer")

        Mutation = tuple[str, str, dict[str, Any], dict[str, str], bool]

        def asked(method: str, path: str, body: dict[str, Any]) -> Mutation:
            """An amount a buyer asks for: every bad amount is tried."""
            return method, path, body, buyer, True

        def limit(method: str, path: str, body: dict[str, Any]) -> Mutation:
            """A limit an organizer sets: only the values no limit may take are tried."""
            return method, path, body, ORG, False

        # (method, path, body with the count in it, who asks, is it an amount asked for)
        def mutations(bad: Any) -> list[Mutation]:
            return [
                asked(
                    "POST",
                    "/api/v1/orders",
                    {"event_id": event_id, "items": [{"ticket_type_id": tt, "quantity": bad}]},
                ),
                asked("POST", f"/api/v1/events/{event_id}/registrations", {"party_size": bad}),
                asked("POST", f"/api/v1/ticket-types/{tt}/waitlist", {"quantity": bad}),
                limit(
                    "POST",
                    f"/api/v1/events/{event_id}/ticket-types",
                    {"name": "Bad", "quantity_total": bad},
                ),
                limit("PATCH", f"/api/v1/ticket-types/{tt}", {"quantity_total": bad}),
                limit("PATCH", f"/api/v1/ticket-types/{tt}", {"max_per_order": bad}),
                limit("PATCH", f"/api/v1/events/{event_id}", {"max_attendees": bad}),
                limit(
                    "PATCH",
                    f"/api/v1/events/{event_id}",
                    {"virtual_settings": {"max_concurrent_viewers": bad}},
                ),
                limit(
                    "PATCH",
                    f"/api/v1/events/{event_id}",
                    {"virtual_settings": {"reconnect_grace_seconds": bad}},
                ),
                limit("POST", "/api/v1/events", {"name": "Bad", "max_attendees": bad}),
                limit("PATCH", f"/api/v1/sessions/{session_id}", {"max_participants": bad}),
                limit(
                    "POST",
                    f"/api/v1/events/{event_id}/sessions",
                    {"title": "Bad", "max_participants": bad},
                ),
                limit(
                    "POST",
                    f"/api/v1/events/{event_id}/booths",
                    {"name": "Bad", "max_visitors": bad},
                ),
                limit(
                    "POST", f"/api/v1/events/{event_id}/huddles", {"name": "Bad", "capacity": bad}
                ),
                limit(
                    "POST",
                    f"/api/v1/sessions/{session_id}/breakout-rooms",
                    {"name": "Bad", "capacity": bad},
                ),
            ]

        before = await state_of(http, event_id)
        accepted: list[str] = []
        tried = 0
        for bad in BAD_AMOUNTS:
            for method, path, body, headers, amount in mutations(bad):
                if not amount and bad not in BAD_LIMITS:
                    continue
                tried += 1
                answer = await http.request(method, path, json=body, headers=headers)
                if not is_problem(answer, 400, 404, 409, 415, 422):
                    accepted.append(f"{method} {path} {body!r} -> {answer.status_code}")
        assert accepted == [], "\n".join(accepted)
        assert await state_of(http, event_id) == before
        assert tried > 100


async def test_a_boolean_is_not_a_quantity(server: Server) -> None:
    """JSON `true` would be ticket number 1 under lax coercion: refused for orders."""
    async with client(server.base_url) as http:
        event_id, (tt,) = await create_event_with_stock(http, 10)
        before = await state_of(http, event_id)
        for bad in (True, False, "1", 1.0):
            answer = await http.post(
                "/api/v1/orders",
                json={"event_id": event_id, "items": [{"ticket_type_id": tt, "quantity": bad}]},
                headers=bearer("bool-buyer"),
            )
            assert is_problem(answer, 422), (bad, answer.text)
            assert answer.json()["code"] == "invalid_quantity"
        assert await state_of(http, event_id) == before


BAD_IDS = [
    "evt_doesNotExist1",
    "nope",
    "%00",
    "%FF%FE",
    "a" * 81,
    "%F0%9F%8E%9F%20%E2%80%AE",
    "..%2F..%2Fetc%2Fpasswd",
    "' OR '1'='1",
    "1;DROP TABLE orders",
]


async def test_unknown_and_malformed_ids_on_every_path(server: Server) -> None:
    async with client(server.base_url) as http:
        event_id, _ = await create_event_with_stock(http, 5)
        before = await state_of(http, event_id)
        schema = (await http.get("/openapi.json")).json()
        wrong: list[str] = []
        calls = 0
        for template, operations in schema["paths"].items():
            if "{" not in template:
                continue
            for method in operations:
                for bad in BAD_IDS:
                    path = template
                    while "{" in path:
                        start, end = path.index("{"), path.index("}")
                        path = path[:start] + bad + path[end + 1 :]
                    for who in (ORG, bearer("id-prober")):
                        calls += 1
                        body: dict[str, object] | None = (
                            {} if method in ("post", "put", "patch") else None
                        )
                        answer = await http.request(method.upper(), path, json=body, headers=who)
                        if not is_problem(answer, 400, 403, 404, 405, 409, 410, 415, 422):
                            wrong.append(f"{method.upper()} {path} -> {answer.status_code}")
        assert wrong == [], "\n".join(wrong[:40])
        assert calls > 100
        assert await state_of(http, event_id) == before


async def test_wrong_content_types_are_415_and_change_nothing(server: Server) -> None:
    async with client(server.base_url) as http:
        event_id, (tt,) = await create_event_with_stock(http, 5)
        before = await state_of(http, event_id)
        order = (
            f'{{"event_id": "{event_id}", "items": [{{"ticket_type_id": "{tt}", "quantity": 1}}]}}'
        )
        for content_type in (
            "text/plain",
            "application/x-www-form-urlencoded",
            "application/xml",
            "multipart/form-data; boundary=x",
            "application/octet-stream",
        ):
            for method, path, body in (
                ("POST", "/api/v1/orders", order),
                ("PATCH", f"/api/v1/ticket-types/{tt}", '{"quantity_total": 1}'),
                ("POST", "/api/v1/events", '{"name": "Form"}'),
            ):
                answer = await http.request(
                    method,
                    path,
                    content=body.encode(),
                    headers={**ORG, "Content-Type": content_type},
                )
                assert is_problem(answer, 415), (content_type, path, answer.text)
                assert answer.json()["code"] == "unsupported_media_type"
        assert await state_of(http, event_id) == before


async def _chunks(size: int) -> AsyncIterator[bytes]:
    for _ in range(size // 4096):
        yield b" " * 4096


async def test_oversized_bodies_are_413_however_they_arrive(server: Server) -> None:
    async with client(server.base_url) as http:
        event_id, _ = await create_event_with_stock(http, 5)
        before = await state_of(http, event_id)
        headers = {**bearer("big-sender"), "Content-Type": "application/json"}
        declared = await http.post(
            "/api/v1/orders", content=b"{" + b" " * (128 * 1024) + b"}", headers=headers
        )
        assert is_problem(declared, 413)
        # No Content-Length (chunked): the limit is enforced on the bytes as they arrive.
        streamed = await http.post("/api/v1/orders", content=_chunks(256 * 1024), headers=headers)
        assert is_problem(streamed, 413), streamed.text
        assert streamed.json()["code"] == "payload_too_large"
        # Under the byte limit but over the item limit: a 422, not a 200-item hold.
        many = {
            "event_id": event_id,
            "items": [{"ticket_type_id": f"tt_x{n}", "quantity": 1} for n in range(500)],
        }
        assert is_problem(await http.post("/api/v1/orders", json=many, headers=headers), 422)
        nested = b"[" * 20_000 + b"]" * 20_000
        assert is_problem(await http.post("/api/v1/orders", content=nested, headers=headers), 400)
        assert await state_of(http, event_id) == before


async def test_unicode_and_long_strings(server: Server) -> None:
    async with client(server.base_url) as http:
        names = [
            "Café ☕ — 東京 🎟️",
            "\u202eevil rtl\u202c",
            "e\u0301\u0301\u0301 zalgo",
            "'; DROP TABLE events; --",
            "x" * 300,
            "\U0001f600" * 300,
        ]
        for name in names:
            made = await http.post("/api/v1/events", json={"name": name}, headers=ORG)
            assert made.status_code == 201, made.text
            back = await http.get(f"/api/v1/events/{made.json()['id']}")
            assert back.json()["name"] == name  # stored and returned exactly
        for name in ("x" * 301, "", "\U0001f600" * 301):
            assert is_problem(
                await http.post("/api/v1/events", json={"name": name}, headers=ORG), 422
            )
        # A NUL cannot be stored by PostgreSQL: refused there, never a 500 on either backend.
        nul = await http.post("/api/v1/events", json={"name": "nul\u0000byte"}, headers=ORG)
        assert nul.status_code == 201 or is_problem(nul, 422), nul.text
        long_query = await http.get("/api/v1/events", params={"organizer_id": "o" * 10_000})
        assert is_problem(long_query, 422)
        long_path = await http.get("/api/v1/events/" + "e" * 5000)
        assert is_problem(long_path, 404, 422)


async def test_duplicate_and_conflicting_idempotency_keys(server: Server) -> None:
    async with client(server.base_url) as http:
        event_id, (tt,) = await create_event_with_stock(http, 10)
        body = {"event_id": event_id, "items": [{"ticket_type_id": tt, "quantity": 1}]}
        keyed = {**bearer("dup-buyer"), "Idempotency-Key": "same-click"}

        # 20 simultaneous retries of one click: one order, twenty identical answers.
        answers = await asyncio.gather(
            *(http.post("/api/v1/orders", json=body, headers=keyed) for _ in range(20))
        )
        assert {a.status_code for a in answers} == {201}, [a.text for a in answers]
        assert len({a.json()["id"] for a in answers}) == 1
        order_id = answers[0].json()["id"]
        after_first = await state_of(http, event_id)
        assert after_first["types"][0]["quantity_reserved"] == 1

        # Same key, different request: refused, nothing reserved.
        changed = {**body, "items": [{"ticket_type_id": tt, "quantity": 3}]}
        reused = await http.post("/api/v1/orders", json=changed, headers=keyed)
        assert is_problem(reused, 422)
        assert reused.json()["code"] == "idempotency_key_reused"
        # Malformed keys: too long, not printable.
        for key in ("k" * 201, "tab\there"):
            bad = await http.post(
                "/api/v1/orders",
                json=body,
                headers={**bearer("dup-buyer"), "Idempotency-Key": key},
            )
            assert is_problem(bad, 422), (key, bad.text)
        assert await state_of(http, event_id) == after_first

        # Keys are per caller: someone else's "same-click" is their own order.
        other = await http.post(
            "/api/v1/orders",
            json=body,
            headers={**bearer("other-buyer"), "Idempotency-Key": "same-click"},
        )
        assert other.status_code == 201
        assert other.json()["id"] != order_id
        # And per operation: the same key on confirm and on cancel does not collide.
        confirm = await http.post(
            f"/api/v1/orders/{order_id}/confirm", headers={**ORG, "Idempotency-Key": "op-1"}
        )
        cancel = await http.post(
            f"/api/v1/orders/{order_id}/cancel", headers={**ORG, "Idempotency-Key": "op-1"}
        )
        assert confirm.json()["status"] == "paid"
        assert cancel.json()["status"] == "refunded"
        again = await http.post(
            f"/api/v1/orders/{order_id}/confirm", headers={**ORG, "Idempotency-Key": "op-1"}
        )
        assert again.json() == confirm.json()  # the replay, not a second sale
        final = (await state_of(http, event_id))["types"][0]
        assert (final["quantity_sold"], final["quantity_reserved"]) == (0, 1)
