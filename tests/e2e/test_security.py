"""Intruders change nothing: forged tokens, other people's things, other organizers' events.

Over HTTP against real servers: every forged or malformed token is a 401 problem; an
attendee cannot read or change another attendee's orders, registrations, RSVPs or
leases (404, so ids do not leak); an organizer cannot touch another organizer's event;
one user cannot hold more than the per-user quota of live holds, even all at once; and
neither the signing secret nor a bearer token ever appears in the server's log.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import warnings
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from headcount.config import DEV_JWT_SECRET, Settings
from headcount.domain.identity import Role
from headcount.tokens import mint
from support.api import client, create_event_with_stock, hold_order
from support.auth import bearer
from support.auth import claims as token_claims
from support.servers import Server, _wait_ready, free_port, running_server, server_env

PROBLEM = "application/problem+json"
ORG = bearer("org-e2e", Role.ORGANIZER)
RIVAL = bearer("org-rival", Role.ORGANIZER)


def assert_problem(response: httpx.Response, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    if code is not None:
        assert response.json()["code"] == code


def _claims(**overrides: object) -> dict[str, object]:
    return token_claims("mallory", **overrides)


def _unsigned(claims: dict[str, object]) -> str:
    return jwt.encode(claims, key="", algorithm="none")


def _hs384(claims: dict[str, object]) -> str:
    """The right key with an algorithm the server does not accept (PyJWT warns: short key)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
        return jwt.encode(claims, DEV_JWT_SECRET, "HS384")


FORGED = {
    "expired": jwt.encode(
        _claims(exp=datetime.now(UTC) - timedelta(minutes=5)), DEV_JWT_SECRET, "HS256"
    ),
    "wrong signature": jwt.encode(_claims(), "not-the-secret-" * 3, "HS256"),
    "alg none": _unsigned(_claims()),
    "alg none as organizer": _unsigned(_claims(role="organizer", sub="org-e2e")),
    "HS384 with the right key": _hs384(_claims()),
    "no exp": jwt.encode(_claims(exp=None), DEV_JWT_SECRET, "HS256"),
    "no sub": jwt.encode(_claims(sub=None), DEV_JWT_SECRET, "HS256"),
    "no role": jwt.encode(_claims(role=None), DEV_JWT_SECRET, "HS256"),
    "unknown role": jwt.encode(_claims(role="admin"), DEV_JWT_SECRET, "HS256"),
    "sub with NUL": jwt.encode(_claims(sub="a\u0000b"), DEV_JWT_SECRET, "HS256"),
    "not a JWT": "not.a.token",
    "whitespace": "-",
    "garbage": "x" * 5000,
}


async def test_forged_tokens_are_refused_and_change_nothing(server: Server) -> None:
    async with client(server.base_url) as http:
        event_id, (tt,) = await create_event_with_stock(http, 5)
        body = {"event_id": event_id, "items": [{"ticket_type_id": tt, "quantity": 1}]}
        for name, token in FORGED.items():
            headers = {"Authorization": f"Bearer {token}"}
            ordered = await http.post("/api/v1/orders", json=body, headers=headers)
            assert ordered.status_code == 401, (name, ordered.text)
            assert_problem(ordered, 401, "unauthorized")
            patched = await http.patch(
                f"/api/v1/events/{event_id}", json={"name": "Owned"}, headers=headers
            )
            assert_problem(patched, 401, "unauthorized")
        for scheme in ("Basic dXNlcjpwYXNz", "Token abc", "Bearer"):
            ordered = await http.post(
                "/api/v1/orders", json=body, headers={"Authorization": scheme}
            )
            assert_problem(ordered, 401, "unauthorized")
        available = (await http.get(f"/api/v1/ticket-types/{tt}")).json()["quantity_available"]
        assert available == 5
        assert (await http.get(f"/api/v1/events/{event_id}")).json()["name"] == "E2E"


@pytest.fixture(scope="module")
def strict_server(sqlite_url: str, log_dir: Path) -> Iterator[Server]:
    """A server that requires an audience and an issuer."""
    env = {"HEADCOUNT_JWT_AUDIENCE": "headcount", "HEADCOUNT_JWT_ISSUER": "https://idp.test"}
    with running_server(sqlite_url, log_dir, env) as server:
        yield server


async def test_wrong_audience_or_issuer_is_refused(strict_server: Server) -> None:
    def token(**claims: object) -> dict[str, str]:
        return {"Authorization": f"Bearer {jwt.encode(_claims(**claims), DEV_JWT_SECRET)}"}

    async with client(strict_server.base_url) as http:
        right = token(aud="headcount", iss="https://idp.test")
        assert (await http.get("/api/v1/orders", headers=right)).status_code == 200
        for wrong in (
            token(aud="someone-else", iss="https://idp.test"),
            token(aud="headcount", iss="https://evil.test"),
            token(iss="https://idp.test"),
            token(aud="headcount"),
        ):
            assert_problem(await http.get("/api/v1/orders", headers=wrong), 401, "unauthorized")


async def test_attendees_cannot_touch_each_others_things(server: Server) -> None:
    async with client(server.base_url) as http:
        event_id, (tt,) = await create_event_with_stock(http, 5)
        alice, eve = bearer("alice-sec"), bearer("eve-sec")
        order_id = await hold_order(http, event_id, tt, alice, 2)
        # Orders: invisible to Eve (404, not 403: existence does not leak), unchangeable.
        assert_problem(await http.get(f"/api/v1/orders/{order_id}", headers=eve), 404)
        assert_problem(await http.post(f"/api/v1/orders/{order_id}/cancel", headers=eve), 404)
        assert_problem(await http.post(f"/api/v1/orders/{order_id}/confirm", headers=eve), 404)
        # Alice cannot pay for her own order herself.
        assert_problem(await http.post(f"/api/v1/orders/{order_id}/confirm", headers=alice), 403)
        listed = await http.get("/api/v1/orders", params={"event_id": event_id}, headers=eve)
        assert listed.json() == []
        assert (await http.get(f"/api/v1/orders/{order_id}", headers=alice)).json()[
            "status"
        ] == "pending"

        # Registrations and RSVPs: "me" is always the caller; lists are the organizer's.
        assert (
            await http.post(f"/api/v1/events/{event_id}/registrations", json={}, headers=alice)
        ).status_code == 201
        assert_problem(await http.get(f"/api/v1/events/{event_id}/registrations", headers=eve), 403)
        assert_problem(
            await http.get(f"/api/v1/events/{event_id}/registrations/me", headers=eve), 404
        )
        eve_cancels = await http.delete(f"/api/v1/events/{event_id}/registrations/me", headers=eve)
        assert eve_cancels.status_code in (200, 404)
        mine = await http.get(f"/api/v1/events/{event_id}/registrations/me", headers=alice)
        assert mine.json()["status"] == "active"
        agenda = await http.post(
            f"/api/v1/events/{event_id}/sessions",
            json={"title": "Talk", "max_participants": 1},
            headers=ORG,
        )
        session_id = agenda.json()["id"]
        assert (
            await http.post(f"/api/v1/sessions/{session_id}/rsvp", headers=alice)
        ).status_code in (200, 201)
        assert_problem(await http.get(f"/api/v1/sessions/{session_id}/waitlist", headers=eve), 403)
        await http.delete(f"/api/v1/sessions/{session_id}/rsvp", headers=eve)
        seat = await http.get(f"/api/v1/sessions/{session_id}/rsvp", headers=alice)
        assert seat.json()["status"] == "confirmed"

        # Leases: Eve can neither renew nor end Alice's place in the stream.
        await http.patch(
            f"/api/v1/events/{event_id}",
            json={"virtual_settings": {"max_concurrent_viewers": 10}},
            headers=ORG,
        )
        lease = await http.post(f"/api/v1/events/{event_id}/viewers", headers=alice)
        assert lease.status_code == 201, lease.text
        lease_id = lease.json()["lease_id"]
        stolen = await http.post(f"/api/v1/leases/{lease_id}/heartbeat", headers=eve)
        assert stolen.status_code in (403, 404), stolen.text
        ended = await http.delete(f"/api/v1/leases/{lease_id}", headers=eve)
        assert ended.status_code in (403, 404), ended.text
        still = await http.post(f"/api/v1/leases/{lease_id}/heartbeat", headers=alice)
        assert still.status_code == 200, still.text


async def test_organizers_cannot_touch_events_that_are_not_theirs(server: Server) -> None:
    async with client(server.base_url) as http:
        event_id, (tt,) = await create_event_with_stock(http, 5)
        order_id = await hold_order(http, event_id, tt, bearer("buyer-sec"))
        attempts: list[tuple[str, str, dict[str, Any] | None]] = [
            ("PATCH", f"/api/v1/events/{event_id}", {"max_attendees": 0}),
            ("POST", f"/api/v1/events/{event_id}/ticket-types", {"name": "X", "quantity_total": 9}),
            ("PATCH", f"/api/v1/ticket-types/{tt}", {"quantity_total": 1000}),
            ("POST", f"/api/v1/events/{event_id}/sessions", {"title": "X", "max_participants": 9}),
            ("POST", f"/api/v1/events/{event_id}/booths", {"name": "X", "max_visitors": 9}),
            ("POST", f"/api/v1/events/{event_id}/huddles", {"name": "X", "capacity": 9}),
            ("GET", f"/api/v1/events/{event_id}/registrations", None),
            ("POST", f"/api/v1/orders/{order_id}/confirm", None),
            ("POST", f"/api/v1/orders/{order_id}/cancel", None),
            ("GET", f"/api/v1/orders/{order_id}", None),
        ]
        before = (await http.get(f"/api/v1/events/{event_id}/capacity")).json()
        for method, path, body in attempts:
            answer = await http.request(method, path, json=body, headers=RIVAL)
            assert answer.status_code in (403, 404), (method, path, answer.text)
            assert answer.headers["content-type"].startswith(PROBLEM)
        listed = await http.get("/api/v1/orders", params={"event_id": event_id}, headers=RIVAL)
        assert listed.json() == []
        after = (await http.get(f"/api/v1/events/{event_id}/capacity")).json()
        for stamp in ("taken_at", "as_of"):  # when each was read
            before.pop(stamp, None)
            after.pop(stamp, None)
        assert after == before
        assert (await http.get(f"/api/v1/orders/{order_id}", headers=ORG)).json()[
            "status"
        ] == "pending"


async def test_one_user_cannot_hold_more_than_the_quota_even_all_at_once(
    server: Server,
) -> None:
    limit = Settings().max_pending_orders_per_user
    async with client(server.base_url, connections=50) as http:
        event_id, (tt,) = await create_event_with_stock(http, 100)
        body = {"event_id": event_id, "items": [{"ticket_type_id": tt, "quantity": 1}]}
        hoarder = bearer("hoarder-http")
        answers = await asyncio.gather(
            *(http.post("/api/v1/orders", json=body, headers=hoarder) for _ in range(30))
        )
        statuses = Counter(a.status_code for a in answers)
        assert statuses == {201: limit, 429: 30 - limit}, statuses
        refused = next(a for a in answers if a.status_code == 429)
        assert_problem(refused, 429, "rate_limited")
        assert refused.headers["retry-after"]
        assert refused.json()["max_pending_orders"] == limit
        seen = (await http.get(f"/api/v1/ticket-types/{tt}")).json()
        assert seen["quantity_reserved"] == limit
        # Cancelling one frees a place for exactly one more.
        first = next(a for a in answers if a.status_code == 201).json()["id"]
        await http.post(f"/api/v1/orders/{first}/cancel", headers=hoarder)
        again = [await http.post("/api/v1/orders", json=body, headers=hoarder) for _ in range(2)]
        assert [a.status_code for a in again] == [201, 429]


def test_no_secret_or_token_in_the_logs(sqlite_url: str, tmp_path: Path) -> None:
    """Debug-level logs of a busy server never contain the signing secret or a bearer token."""
    secret = "log-leak-canary-secret-" + "z" * 20
    settings = Settings(jwt_secret=secret, env="test")
    token = mint(settings, "canary-user", Role.ORGANIZER)
    port = free_port()
    log_path = tmp_path / "debug.log"
    env = server_env(sqlite_url, {"HEADCOUNT_JWT_SECRET": secret})
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "headcount", "serve"),
                *("--port", str(port), "--log-level", "debug"),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Server(f"http://127.0.0.1:{port}", process, log_path)
    try:
        _wait_ready(server)
        with httpx.Client(base_url=server.base_url, timeout=30) as http:
            auth = {"Authorization": f"Bearer {token}"}
            event = http.post("/api/v1/events", json={"name": "Logs"}, headers=auth).json()
            http.post(f"/api/v1/events/{event['id']}/ticket-types", json={}, headers=auth)
            http.post("/api/v1/orders", content=b"{", headers=auth)
            http.get("/api/v1/orders/ord_nope", headers=auth)
            http.get("/api/v1/orders", headers={"Authorization": f"Bearer {token}x"})
            http.get("/api/v1/orders", headers={"Authorization": "Bearer " + token[:-4]})
            http.get(f"/api/v1/events/{event['id']}", params={"token": "not-a-real-place"})
    finally:
        process.terminate()
        process.wait(10)
    logged = log_path.read_text(errors="replace")
    assert "GET /api/v1/orders" in logged  # the log did record the requests
    assert secret not in logged
    assert token not in logged
    assert token.split(".")[2] not in logged  # not even the signature
    assert token[:-4] not in logged


async def test_graphql_enforces_the_same_rules(server: Server) -> None:
    """GraphQL calls the same services: a stranger's order is NotFound, a forged token fails."""
    async with client(server.base_url) as http:
        event_id, (tt,) = await create_event_with_stock(http, 5)
        order_id = await hold_order(http, event_id, tt, bearer("alice-gql"))

        async def graphql(query: str, headers: dict[str, str]) -> dict[str, Any]:
            answer = await http.post("/graphql", json={"query": query}, headers=headers)
            assert answer.status_code < 500, answer.text
            body: dict[str, Any] = answer.json()
            return body

        eve = bearer("eve-gql")
        peek = await graphql(f'{{ order(id: "{order_id}") {{ __typename }} }}', eve)
        assert peek["data"]["order"]["__typename"] == "NotFound"
        cancel = await graphql(
            f'mutation {{ cancelOrder(id: "{order_id}") {{ __typename }} }}', eve
        )
        assert cancel["data"]["cancelOrder"]["__typename"] == "NotFound"
        for token in (FORGED["alg none as organizer"], FORGED["wrong signature"]):
            forged = await graphql(
                f'mutation {{ confirmOrder(id: "{order_id}") {{ __typename }} }}',
                {"Authorization": f"Bearer {token}"},
            )
            data = forged.get("data") or {}
            typename = (data.get("confirmOrder") or {}).get("__typename")
            codes = [e.get("extensions", {}).get("code") for e in forged.get("errors") or []]
            assert typename == "Unauthorized" or "unauthorized" in codes, forged
        mine = await http.get(f"/api/v1/orders/{order_id}", headers=bearer("alice-gql"))
        assert mine.json()["status"] == "pending"
