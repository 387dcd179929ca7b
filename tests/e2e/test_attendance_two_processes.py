"""Registrations, RSVPs and waitlists against two real server processes sharing one database.

Hundreds of HTTP clients, alternating between the two processes, for register-at-the-cap,
RSVP-at-the-cap and leave-while-others-join. The rows are then read straight from the
database and checked exactly, and the real `headcount reconcile` command must agree.
Correctness here cannot come from anything process-local: only the database's row locks
and conditional statements are shared.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from headcount.domain.identity import Role
from support.api import client
from support.attendance_checks import assert_session_invariants, registration_rows, session_rows
from support.auth import bearer
from support.databases import BACKENDS
from support.ledger_checks import run_reconcile
from support.servers import Server, two_processes

pytestmark = pytest.mark.slow
ORG = bearer("org-e2e-att", Role.ORGANIZER)
Call = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


@pytest.fixture(scope="module", params=BACKENDS)
def cluster(request: pytest.FixtureRequest, log_dir: Path) -> Iterator[tuple[str, list[Server]]]:
    with two_processes(request, log_dir) as found:
        yield found


async def hammer(label: str, servers: list[Server], calls: list[Call]) -> list[httpx.Response]:
    """Fire every call at once, alternating processes; print the figures."""
    random.shuffle(calls)
    clients = [client(s.base_url, connections=len(calls)) for s in servers]
    try:
        start = time.perf_counter()
        answers = await asyncio.gather(
            *(call(clients[n % len(clients)]) for n, call in enumerate(calls))
        )
        elapsed = time.perf_counter() - start
    finally:
        for c in clients:
            await c.aclose()
    print(
        f"\n{label}: {len(calls)} clients, {len(servers)} processes, {elapsed:.2f}s, "
        f"{len(calls) / elapsed:.0f} requests/s, {dict(Counter(a.status_code for a in answers))}"
    )
    assert all(a.status_code < 500 for a in answers), [
        a.text for a in answers if a.status_code >= 500
    ]
    return answers


async def make_event(servers: list[Server], **fields: object) -> str:
    async with client(servers[0].base_url) as http:
        made = await http.post("/api/v1/events", json={"name": "E2E att", **fields}, headers=ORG)
        assert made.status_code == 201, made.text
        event_id: str = made.json()["id"]
        return event_id


async def register_all(servers: list[Server], event_id: str, who: list[str]) -> None:
    calls: list[Call] = [
        lambda http, w=w: http.post(  # type: ignore[misc]
            f"/api/v1/events/{event_id}/registrations", headers=bearer(w)
        )
        for w in who
    ]
    answers = await hammer("register (setup)", servers, calls)
    assert {a.status_code for a in answers} == {201}


def assert_reconciles(url: str) -> None:
    checked = run_reconcile(url)
    assert checked.returncode == 0, checked.stdout + checked.stderr


async def test_register_at_the_cap(cluster: tuple[str, list[Server]]) -> None:
    url, servers = cluster
    cap, people = 80, 280
    event_id = await make_event(servers, max_attendees=cap)
    who = [f"reg-{n}" for n in range(people)]
    calls: list[Call] = [
        lambda http, w=w: http.post(  # type: ignore[misc]
            f"/api/v1/events/{event_id}/registrations",
            json={"party_size": 1},
            headers={**bearer(w), "Idempotency-Key": f"reg-{w}"},
        )
        for w in who
    ]
    # Retries with the same Idempotency-Key, racing the first attempt, must not count twice.
    calls += [calls[n] for n in range(0, people, 8)]
    answers = await hammer("register at the cap", servers, calls)
    codes = Counter(a.json().get("code") for a in answers if a.status_code == 409)
    rows = registration_rows(url, event_id)
    assert rows.registered == rows.heads_in_rows == cap
    assert len(rows.active_attendees) == cap
    admitted = {a.json()["attendee_id"] for a in answers if a.status_code in (200, 201)}
    assert admitted == set(rows.active_attendees)
    assert set(codes) == {"event_full"}
    async with client(servers[1].base_url) as http:
        summary = (await http.get(f"/api/v1/events/{event_id}/capacity")).json()
    assert summary["registrations"] == {
        "max_attendees": cap,
        "registered": cap,
        "remaining": 0,
        "is_full": True,
    }
    assert_reconciles(url)


async def _session(servers: list[Server], event_id: str, seats: int) -> str:
    async with client(servers[0].base_url) as http:
        made = await http.post(
            f"/api/v1/events/{event_id}/sessions",
            json={"title": "Tiny room", "max_participants": seats},
            headers=ORG,
        )
        assert made.status_code == 201, made.text
        session_id: str = made.json()["id"]
        return session_id


def rsvp(session_id: str, who: str, method: str = "POST") -> Call:
    return lambda http: http.request(
        method, f"/api/v1/sessions/{session_id}/rsvp", headers=bearer(who)
    )


async def test_rsvp_at_the_cap(cluster: tuple[str, list[Server]]) -> None:
    url, servers = cluster
    seats, people = 20, 250
    event_id = await make_event(servers)
    who = [f"rsvp-{n}" for n in range(people)]
    await register_all(servers, event_id, who)
    session_id = await _session(servers, event_id, seats)
    answers = await hammer("rsvp at the cap", servers, [rsvp(session_id, w) for w in who])
    bodies = [a.json() for a in answers]
    assert Counter(b["status"] for b in bodies) == {
        "confirmed": seats,
        "waitlisted": people - seats,
    }
    rows = session_rows(url, session_id)
    assert_session_invariants(rows)
    assert rows.attendance == seats
    rank = {a: i + 1 for i, (a, _) in enumerate(rows.waiting)}
    assert {b["attendee_id"]: b["position"] for b in bodies if b["status"] == "waitlisted"} == rank
    assert_reconciles(url)


async def test_leave_while_others_join(cluster: tuple[str, list[Server]]) -> None:
    url, servers = cluster
    seats, queued, newcomers, leaving, quitting = 20, 30, 200, 10, 5
    event_id = await make_event(servers)
    who = [f"lw-{n}" for n in range(seats + queued + newcomers)]
    await register_all(servers, event_id, who)
    session_id = await _session(servers, event_id, seats)
    seated, waiting, fresh = who[:seats], who[seats : seats + queued], who[seats + queued :]
    async with client(servers[0].base_url) as http:
        for w in seated + waiting:  # a known queue
            assert (await rsvp(session_id, w)(http)).status_code == 200
    leavers, quitters = seated[:leaving], waiting[-quitting:]
    calls = [rsvp(session_id, w, "DELETE") for w in leavers + quitters]
    calls += [rsvp(session_id, w) for w in fresh]
    answers = await hammer("leave while others join", servers, calls)
    assert {a.status_code for a in answers} == {200}
    newcomer_answers = [a.json() for a in answers if a.json()["attendee_id"] in set(fresh)]
    assert {b["status"] for b in newcomer_answers} == {"waitlisted"}

    rows = session_rows(url, session_id)
    assert_session_invariants(rows)
    assert rows.attendance == seats
    assert [a for a, _ in rows.promoted] == waiting[:leaving]
    still = [a for a, _ in rows.waiting]
    assert still[: queued - leaving - quitting] == waiting[leaving:-quitting]
    assert sorted(still[queued - leaving - quitting :]) == sorted(fresh)
    assert_reconciles(url)
