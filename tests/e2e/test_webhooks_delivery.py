"""Webhooks while two server processes take a flash sale and an RSVP/waitlist storm.

Both servers run the relay (every replica does); a receiver on 127.0.0.1 verifies every
request with the reference verifier. Besides the changes the decisions record, a writer
in this process records more straight into the log, some rolled back on purpose. After
dedupe by `webhook-id` the receiver must hold exactly the changes the database committed
for the endpoint's scope, in position order per event, and none that was rolled back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from headcount.domain.identity import Role
from support.api import client, create_event_with_stock
from support.auth import bearer
from support.receiver import Receiver, running_receiver
from support.servers import Server, running_servers
from support.webhook_checks import (
    WEBHOOK_SETTINGS,
    Writer,
    assert_received_exactly,
    register,
    runtime_for,
    wait_for_everything,
)

pytestmark = pytest.mark.slow
ORGANIZER = "org-hooks-e2e"
ORG = bearer(ORGANIZER, Role.ORGANIZER)
PATIENT = {
    **WEBHOOK_SETTINGS,
    "HEADCOUNT_DB_POOL_SIZE": "6",
    "HEADCOUNT_DB_MAX_OVERFLOW": "2",
    "HEADCOUNT_DB_POOL_TIMEOUT": "120",
    "HEADCOUNT_DB_STATEMENT_TIMEOUT_MS": "60000",
}
BUYERS, STOCK = 120, 40
PEOPLE, SEATS = 60, 10


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as got:
        yield got


async def _flash_sale(clients: list[httpx.AsyncClient], event_id: str, tt: str) -> None:
    answers = await asyncio.gather(
        *(
            clients[n % 2].post(
                "/api/v1/orders",
                json={"event_id": event_id, "items": [{"ticket_type_id": tt, "quantity": 1}]},
                headers=bearer(f"hook-buyer-{n}"),
            )
            for n in range(BUYERS)
        )
    )
    assert sorted({a.status_code for a in answers}) == [201, 409]
    held = [a.json()["id"] for a in answers if a.status_code == 201]
    await asyncio.gather(
        *(
            clients[i % 2].post(f"/api/v1/orders/{oid}/confirm", headers=ORG)
            for i, oid in enumerate(held[: STOCK // 2])
        )
    )


async def _rsvp_storm(clients: list[httpx.AsyncClient], event_id: str) -> None:
    who = [f"hook-rsvp-{n}" for n in range(PEOPLE)]
    await asyncio.gather(
        *(
            clients[n % 2].post(f"/api/v1/events/{event_id}/registrations", headers=bearer(w))
            for n, w in enumerate(who)
        )
    )
    made = await clients[0].post(
        f"/api/v1/events/{event_id}/sessions",
        json={"title": "Hooked room", "max_participants": SEATS},
        headers=ORG,
    )
    assert made.status_code == 201, made.text
    session = made.json()["id"]
    rsvps = await asyncio.gather(
        *(
            clients[n % 2].post(f"/api/v1/sessions/{session}/rsvp", headers=bearer(w))
            for n, w in enumerate(who)
        )
    )
    assert {a.status_code for a in rsvps} == {200}
    # Seated people leave while others still join: the waitlist moves.
    await asyncio.gather(
        *(
            clients[n % 2].delete(f"/api/v1/sessions/{session}/rsvp", headers=bearer(w))
            for n, w in enumerate(who[:5])
        )
    )


async def test_two_processes_deliver_exactly_the_committed_changes(
    postgres_url: str, log_dir: Path, receiver: Receiver
) -> None:
    rt = runtime_for(postgres_url)
    servers: list[Server]
    try:
        with running_servers(2, postgres_url, log_dir, PATIENT) as servers:
            clients = [client(s.base_url, connections=BUYERS) for s in servers]
            try:
                await register(clients[0], receiver, ORG)
                sale, (tt,) = await create_event_with_stock(clients[0], STOCK, organizer=ORGANIZER)
                storm = (
                    await clients[1].post("/api/v1/events", json={"name": "Storm"}, headers=ORG)
                ).json()["id"]
                quiet = (
                    await clients[1].post(
                        "/api/v1/events",
                        json={"name": "Elsewhere"},
                        headers=bearer("org-not-hooked", Role.ORGANIZER),
                    )
                ).json()["id"]
                writer = Writer(rt, [sale, storm, quiet])
                await asyncio.gather(
                    _flash_sale(clients, sale, tt),
                    _rsvp_storm(clients, storm),
                    writer.run(240, per_second=200),
                )
                expected = await wait_for_everything(rt, receiver, [sale, storm], within=60)
            finally:
                for http in clients:
                    await http.aclose()
        assert len(expected) > 100
        assert_received_exactly(receiver, expected, writer.rolled_back)
        assert {r.body["event_id"] for r in receiver.first_seen()} <= {sale, storm}
        assert receiver.overlapping() == []
        print(
            f"\nwebhooks: {len(expected)} changes in scope, {len(receiver.snapshot())} "
            f"requests received, {len(writer.rolled_back)} rolled back"
        )
    finally:
        await rt.close()
