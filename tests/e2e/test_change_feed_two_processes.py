"""The change feed read over HTTP from two server processes while they decide.

A flash sale (with cancellations) and an RSVP/waitlist storm (with leaves) run against
two `headcount serve` processes sharing one database, while a reader pages the event's
feed, alternating between the processes. Nothing here can come from one process's
memory: each process sequences changes in its own loop, and the reader's cursor works on
either. Afterwards:

* the pages held exactly the event's committed changes, each once, in position order;
* only committed decisions are there: one `order.created` per 201, none for a 409;
* per resource, position order is commit order: replaying the figures the payloads carry
  (the stock left after each hold, the seats taken after each RSVP) in feed order gives
  exactly the figure each change reports, which an out-of-order feed could not;
* `headcount reconcile` replays the log to the counters.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from headcount.domain.changes import decode_cursor
from headcount.domain.identity import Role
from support.api import client, create_event_with_stock
from support.auth import bearer
from support.ledger_checks import direct_connection, run_reconcile
from support.servers import running_servers

pytestmark = pytest.mark.slow
ORG = "org-feed-e2e"
BUYERS, STOCK = 200, 50
GUESTS, SEATS = 90, 15
PATIENT = {
    "HEADCOUNT_DB_POOL_SIZE": "6",
    "HEADCOUNT_DB_MAX_OVERFLOW": "2",
    "HEADCOUNT_DB_POOL_TIMEOUT": "120",
    "HEADCOUNT_DB_STATEMENT_TIMEOUT_MS": "60000",
    "HEADCOUNT_MAX_PENDING_ORDERS_PER_USER": "0",
}


def _committed_ids(database_url: str, event_id: str) -> tuple[set[str], int]:
    """(ids of the event's changes, how many have no position yet), from the database."""
    with direct_connection(database_url) as conn:
        rows = conn.execute(
            text("SELECT id, position FROM changes WHERE event_id = :e"), {"e": event_id}
        ).all()
    return {f"chg_{r[0]}" for r in rows}, sum(r[1] is None for r in rows)


async def test_the_feed_holds_exactly_the_committed_changes_in_commit_order(
    shared_database: str, log_dir: Path
) -> None:
    rng = random.Random(13)
    org = bearer(ORG, Role.ORGANIZER)
    with running_servers(2, shared_database, log_dir, PATIENT) as servers:
        clients = [client(s.base_url, connections=BUYERS + GUESTS) for s in servers]
        try:
            event_id, (tt,) = await create_event_with_stock(clients[0], STOCK, organizer=ORG)
            made = await clients[1].post(
                f"/api/v1/events/{event_id}/sessions",
                json={"title": "Workshop", "max_participants": SEATS},
                headers=org,
            )
            session_id = made.json()["id"]
            for n in range(GUESTS):
                registered = await clients[n % 2].post(
                    f"/api/v1/events/{event_id}/registrations", headers=bearer(f"fe-guest-{n}")
                )
                assert registered.status_code == 201

            read: list[dict[str, Any]] = []
            storming = True

            async def reader() -> None:
                after: str | None = None
                n = 0
                while True:
                    params: dict[str, Any] = {"limit": 50}
                    if after is not None:
                        params["after"] = after
                    page = await clients[n % 2].get(
                        f"/api/v1/events/{event_id}/changes", params=params, headers=org
                    )
                    n += 1
                    assert page.status_code == 200, page.text
                    body = page.json()
                    read.extend(body["changes"])
                    after = body["next"]
                    if body["has_more"]:
                        continue
                    if not storming:
                        ids, unpositioned = _committed_ids(shared_database, event_id)
                        if unpositioned == 0 and len(read) >= len(ids):
                            return
                    await asyncio.sleep(0.02)

            async def buyer(n: int) -> tuple[str | None, bool]:
                http, who = clients[n % 2], bearer(f"fe-buyer-{n}")
                held = await http.post(
                    "/api/v1/orders",
                    json={"event_id": event_id, "items": [{"ticket_type_id": tt, "quantity": 1}]},
                    headers=who,
                )
                assert held.status_code in (201, 409), held.text
                if held.status_code != 201:
                    return None, False
                order_id = held.json()["id"]
                if n % 3:
                    return order_id, False
                gone = await clients[(n + 1) % 2].post(
                    f"/api/v1/orders/{order_id}/cancel", headers=who
                )
                assert gone.status_code == 200, gone.text
                return order_id, True

            async def guest(n: int) -> str:
                http, who = clients[n % 2], bearer(f"fe-guest-{n}")
                answer = await http.post(f"/api/v1/sessions/{session_id}/rsvp", headers=who)
                assert answer.status_code in (200, 201), answer.text
                status: str = answer.json()["status"]
                if n % 4 == 0:
                    left = await clients[(n + 1) % 2].delete(
                        f"/api/v1/sessions/{session_id}/rsvp", headers=who
                    )
                    assert left.status_code == 200, left.text
                return status

            reading = asyncio.create_task(reader())
            start = time.perf_counter()
            calls = [buyer(n) for n in range(BUYERS)] + [guest(n) for n in range(GUESTS)]
            rng.shuffle(calls)
            outcomes = await asyncio.gather(*calls)
            storming = False
            await asyncio.wait_for(reading, 60)
            elapsed = time.perf_counter() - start
        finally:
            for http in clients:
                await http.aclose()

    sales = [o for o in outcomes if isinstance(o, tuple)]
    rsvps = Counter(o for o in outcomes if isinstance(o, str))
    print(
        f"\nfeed e2e {shared_database.split(':', maxsplit=1)[0]}: {len(read)} changes read while "
        f"{BUYERS} buyers and {GUESTS} guests ran, {elapsed:.1f}s, {dict(rsvps)}"
    )

    # Exactly the committed changes, each once, in position order.
    ids = [c["id"] for c in read]
    assert len(ids) == len(set(ids)), "a change was read twice"
    committed, unpositioned = _committed_ids(shared_database, event_id)
    assert unpositioned == 0
    assert set(ids) == committed
    positions = [decode_cursor(c["cursor"]) for c in read]
    assert positions == sorted(positions)

    # Only what committed: one order.created per 201, one order.cancelled per cancel.
    by_type = Counter(c["type"] for c in read)
    created = {c["payload"]["order_id"] for c in read if c["type"] == "order.created"}
    assert created == {order_id for order_id, _ in sales if order_id is not None}
    cancelled = {c["payload"]["order_id"] for c in read if c["type"] == "order.cancelled"}
    assert cancelled == {order_id for order_id, gone in sales if gone}
    assert by_type["rsvp.confirmed"] + by_type["rsvp.waitlisted"] == GUESTS

    # Per resource, feed order is commit order: the figures replay exactly.
    available = STOCK
    for change in read:
        if change["type"] == "order.created":
            available -= 1
            assert change["payload"]["items"][0]["available"] == available, change
        elif change["type"] == "order.cancelled":
            available += 1
    seated, queue = 0, []
    for change in read:
        payload = change["payload"]
        if change["type"] in ("rsvp.confirmed", "waitlist.promoted"):
            seated += 1
            assert payload["current_attendance"] == seated, change
        elif change["type"] == "rsvp.cancelled":
            seated -= 1
            assert payload["current_attendance"] == seated, change
        elif change["type"] == "rsvp.waitlisted":
            queue.append(payload["seq"])
    assert queue == sorted(set(queue)), "waitlist places out of commit order"
    thresholds = [c["type"] for c in read if c["type"].startswith("ticket_type.")]
    thresholds = [t for t in thresholds if t != "ticket_type.created"]
    assert thresholds, "the sale never sold out"
    expected = ["ticket_type.sold_out", "ticket_type.back_in_stock"]
    assert thresholds == [expected[n % 2] for n in range(len(thresholds))]

    reconciled = run_reconcile(shared_database)
    assert reconciled.returncode == 0, reconciled.stdout + reconciled.stderr
