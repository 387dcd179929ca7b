"""The change feed and the audit trail over HTTP and GraphQL (in process, both databases):
paging with cursors, request ids and actors, who may read, bad cursors; and retention,
410 `cursor_expired`, and reconcile replaying the log."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import select

from headcount.capacity import events, feed, orders, retention, sequencer, tickets
from headcount.capacity.events import EventDraft
from headcount.capacity.orders import OrderDraft, OrderItemInput
from headcount.capacity.tickets import TicketTypeDraft
from headcount.config import Settings
from headcount.domain.changes import decode_cursor, encode_cursor
from headcount.domain.errors import CursorExpired
from headcount.domain.identity import Role
from headcount.ledger import changes
from headcount.ledger.changes import Change
from headcount.ledger.db import Tx
from headcount.ledger.models import TicketType
from headcount.ledger.reconcile import reconcile
from headcount.runtime import Runtime
from support.auth import attendee, bearer, organizer
from support.changes import event_changes, positioned
from support.databases import postgres_database, sqlite_database
from support.graphql import gql
from support.runtimes import open_runtime
from support.services import need_postgres

ORG = "org-feed"
SERVICE = bearer("platform", Role.SERVICE)


async def _sale(http: httpx.AsyncClient, total: int = 3) -> tuple[str, str]:
    headers = {**bearer(ORG, Role.ORGANIZER), "X-Request-Id": "req-create-event"}
    made = await http.post("/api/v1/events", json={"name": "Feed"}, headers=headers)
    assert made.status_code == 201
    assert made.headers["x-request-id"] == "req-create-event"
    event_id: str = made.json()["id"]
    tt = await http.post(
        f"/api/v1/events/{event_id}/ticket-types",
        json={"name": "GA", "quantity_total": total},
        headers=bearer(ORG, Role.ORGANIZER),
    )
    return event_id, tt.json()["id"]


async def _buy(http: httpx.AsyncClient, event_id: str, tt: str, who: str) -> httpx.Response:
    return await http.post(
        "/api/v1/orders",
        json={"event_id": event_id, "items": [{"ticket_type_id": tt, "quantity": 1}]},
        headers={**bearer(who), "X-Request-Id": f"req-{who}"},
    )


async def _page(
    http: httpx.AsyncClient, path: str, headers: dict[str, str], **params: Any
) -> httpx.Response:
    return await http.get(
        path, params={k: v for k, v in params.items() if v is not None}, headers=headers
    )


async def test_the_event_feed_pages_every_change_once_in_position_order(
    http: httpx.AsyncClient, runtime: Runtime
) -> None:
    event_id, tt = await _sale(http)
    for who in ("feed-a", "feed-b", "feed-c"):
        assert (await _buy(http, event_id, tt, who)).status_code == 201
    assert (await _buy(http, event_id, tt, "feed-d")).status_code == 409  # sold out: no row
    await positioned(runtime)

    org = bearer(ORG, Role.ORGANIZER)
    path = f"/api/v1/events/{event_id}/changes"
    read: list[dict[str, Any]] = []
    after: str | None = None
    pages = 0
    while True:
        answer = await _page(http, path, org, after=after, limit=2)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        read += body["changes"]
        after, pages = body["next"], pages + 1
        if not body["has_more"]:
            break
    assert pages == 3
    assert [c["type"] for c in read] == [
        "event.created",
        "ticket_type.created",
        "order.created",
        "order.created",
        "order.created",
        "ticket_type.sold_out",
    ]
    assert len({c["id"] for c in read}) == len(read)
    positions = [decode_cursor(c["cursor"]) for c in read]
    assert positions == sorted(positions)
    first = read[0]
    assert (first["actor_sub"], first["actor_role"], first["request_id"]) == (
        ORG,
        "organizer",
        "req-create-event",
    )
    bought = read[2]
    assert (bought["actor_sub"], bought["request_id"]) == ("feed-a", "req-feed-a")
    assert bought["payload"]["items"] == [{"ticket_type_id": tt, "quantity": 1, "available": 2}]
    assert bought["resource_type"] == "order"

    # Caught up: the same cursor again answers nothing, and `next` stays put or moves on.
    again = (await _page(http, path, org, after=after)).json()
    assert (again["changes"], again["has_more"]) == ([], False)
    assert decode_cursor(again["next"]) >= decode_cursor(after)

    # A change's own cursor resumes right after it; filters narrow by type.
    resumed = (await _page(http, path, org, after=read[3]["cursor"])).json()
    assert [c["id"] for c in resumed["changes"]] == [c["id"] for c in read[4:]]
    only = await http.get(
        path, params=[("type", "ticket_type.sold_out,event.created")], headers=org
    )
    assert [c["type"] for c in only.json()["changes"]] == ["event.created", "ticket_type.sold_out"]

    # The platform's whole feed holds the same changes (and others' events).
    everything: list[str] = []
    cursor = read[0]["cursor"]
    while True:
        body = (await _page(http, "/api/v1/changes", SERVICE, after=cursor, limit=1000)).json()
        everything += [c["id"] for c in body["changes"]]
        cursor = body["next"]
        if not body["has_more"]:
            break
    assert [c["id"] for c in read[1:]] == [i for i in everything if i in {c["id"] for c in read}]


async def test_request_ids_are_kept_when_sane_and_made_otherwise(http: httpx.AsyncClient) -> None:
    kept = await http.get("/healthz", headers={"X-Request-Id": "abc-123.DEF:4"})
    assert kept.headers["x-request-id"] == "abc-123.DEF:4"
    made = (await http.get("/healthz")).headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    for insane in ("x" * 101, "has space", "new\tline", ""):
        answer = await http.get("/healthz", headers={"X-Request-Id": insane})
        assert re.fullmatch(r"[0-9a-f]{32}", answer.headers["x-request-id"]), insane
    missing = await http.get("/api/v1/events/evt_nothere", headers={"X-Request-Id": "req-404"})
    assert (missing.status_code, missing.headers["x-request-id"]) == (404, "req-404")


async def test_who_may_read_the_feed_and_the_audit(http: httpx.AsyncClient) -> None:
    event_id, _ = await _sale(http)
    for path in (f"/api/v1/events/{event_id}/changes", f"/api/v1/events/{event_id}/audit"):
        assert (await http.get(path)).status_code == 401
        for stranger in (bearer("feed-attendee"), bearer("org-other", Role.ORGANIZER)):
            refused = await http.get(path, headers=stranger)
            assert (refused.status_code, refused.json()["code"]) == (403, "forbidden")
        assert (await http.get(path, headers=SERVICE)).status_code == 200
        assert (await http.get(path, headers=bearer(ORG, Role.ORGANIZER))).status_code == 200
    gone = await http.get("/api/v1/events/evt_nothere/changes", headers=SERVICE)
    assert (gone.status_code, gone.json()["code"]) == (404, "not_found")
    for who in (bearer(ORG, Role.ORGANIZER), bearer("feed-attendee")):
        assert (await http.get("/api/v1/changes", headers=who)).status_code == 403


async def test_bad_cursors_and_filters_are_refused(http: httpx.AsyncClient) -> None:
    event_id, _ = await _sale(http)
    org = bearer(ORG, Role.ORGANIZER)
    path = f"/api/v1/events/{event_id}/changes"
    for cursor in ("garbage", "chg1.!!!", "41", "chg1." + "A" * 40, encode_cursor(2**62)):
        refused = await _page(http, path, org, after=cursor)
        assert refused.status_code == 422, cursor
        assert refused.json()["code"] == "invalid_cursor"
        assert refused.headers["content-type"] == "application/problem+json"
    for params in ({"limit": 0}, {"limit": 1001}, {"type": "order.exploded"}):
        refused = await _page(http, path, org, **params)
        assert (refused.status_code, refused.json()["code"]) == (422, "invalid_request"), params
    audit = f"/api/v1/events/{event_id}/audit"
    refused = await _page(http, audit, org, resource_id="tt_x")
    assert (refused.status_code, refused.json()["code"]) == (422, "invalid_request")


async def test_the_audit_trail_says_who_changed_what_from_what_to_what(
    http: httpx.AsyncClient, runtime: Runtime
) -> None:
    event_id, tt = await _sale(http)
    org = bearer(ORG, Role.ORGANIZER)
    await http.patch(f"/api/v1/ticket-types/{tt}", json={"quantity_total": 5}, headers=org)
    await http.patch(f"/api/v1/events/{event_id}", json={"max_attendees": 40}, headers=org)
    await _buy(http, event_id, tt, "audit-buyer")  # a sale is not an audit entry
    await positioned(runtime)
    body = (await http.get(f"/api/v1/events/{event_id}/audit", headers=org)).json()
    entries = [(e["type"], e["before"], e["after"]) for e in body["entries"]]
    assert [t for t, _, _ in entries] == [
        "event.created",
        "ticket_type.created",
        "ticket_type.changed",
        "event.changed",
    ]
    assert entries[2][1:] == ({"quantity_total": 3}, {"quantity_total": 5})
    assert entries[3][1:] == ({"max_attendees": None}, {"max_attendees": 40})
    assert {e["actor_sub"] for e in body["entries"]} == {ORG}
    narrowed = await http.get(
        f"/api/v1/events/{event_id}/audit",
        params={"resource_type": "ticket_type", "resource_id": tt},
        headers=org,
    )
    assert [e["type"] for e in narrowed.json()["entries"]] == [
        "ticket_type.created",
        "ticket_type.changed",
    ]


FEED = """
query Feed($eventId: ID!, $after: String, $limit: Int!) {
  changes(eventId: $eventId, after: $after, limit: $limit) {
    __typename
    ... on ChangePage { next hasMore changes { id cursor type actorSub payload } }
    ... on Refusal { code }
  }
}
"""


async def test_graphql_reads_the_same_feed(http: httpx.AsyncClient, runtime: Runtime) -> None:
    event_id, tt = await _sale(http)
    await _buy(http, event_id, tt, "gql-feed")
    await positioned(runtime)
    rest = (
        await http.get(f"/api/v1/events/{event_id}/changes", headers=bearer(ORG, Role.ORGANIZER))
    ).json()
    variables = {"eventId": event_id, "after": None, "limit": 100}
    page = (await gql(http, FEED, variables, as_user=ORG, role=Role.ORGANIZER))["changes"]
    assert page["__typename"] == "ChangePage"
    assert [(c["id"], c["cursor"], c["type"], c["payload"]) for c in page["changes"]] == [
        (c["id"], c["cursor"], c["type"], c["payload"]) for c in rest["changes"]
    ]
    assert (page["next"], page["hasMore"]) == (rest["next"], rest["has_more"])
    refused = await gql(
        http, FEED, {**variables, "after": "nope"}, as_user=ORG, role=Role.ORGANIZER
    )
    assert refused["changes"] == {"__typename": "InvalidCursor", "code": "invalid_cursor"}
    stranger = await gql(http, FEED, variables, as_user="gql-stranger")
    assert stranger["changes"] == {"__typename": "Forbidden", "code": "forbidden"}


# --- retention and reconcile ------------------------------------------------------------


@contextmanager
def _fresh_database(backend: str, tmp_path: Path) -> Iterator[str]:
    """A database of its own: retention prunes the whole log, not one event's."""
    if backend == "postgresql":
        need_postgres()
        with postgres_database() as url:
            yield url
    else:
        with sqlite_database(tmp_path) as url:
            yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with _fresh_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
async def fresh(fresh_url: str) -> AsyncIterator[Runtime]:
    async with open_runtime(fresh_url) as rt:
        yield rt


async def _orders(rt: Runtime, event_id: str, tt: str, names: list[str]) -> None:
    for name in names:
        draft = OrderDraft(event_id=event_id, items=[OrderItemInput(ticket_type_id=tt, quantity=1)])
        await orders.create_order(rt, attendee(name), draft)


async def _no_drift(rt: Runtime) -> list[str]:
    async with rt.db.transaction() as tx:
        return [str(d) for d in await reconcile(tx)]


async def test_retention_prunes_what_is_old_and_a_stale_cursor_gets_410(fresh: Runtime) -> None:
    rt = fresh
    start = datetime.fromisoformat("2026-01-10T09:00:00+00:00")
    rt.clock = lambda: start
    org = organizer(ORG)
    event = await events.create_event(rt, org, EventDraft(name="Old"))
    tt = await tickets.create_ticket_type(
        rt, org, event.id, TicketTypeDraft(name="GA", quantity_total=10)
    )
    await _orders(rt, event.id, tt.id, ["ret-a", "ret-b"])
    await positioned(rt)
    early = await feed.event_changes(rt, org, event.id, limit=1)
    assert early.changes[0].type == "event.created"

    later = start + timedelta(days=31)
    rt.clock = lambda: later
    await _orders(rt, event.id, tt.id, ["ret-c"])
    await positioned(rt)
    assert await retention.prune_changes(rt, batch=2) == 4  # the four changes of day one
    assert await retention.prune_changes(rt) == 0  # the rest is young

    with pytest.raises(CursorExpired) as expired:
        await feed.event_changes(rt, org, event.id, after=early.changes[0].cursor)
    resume = expired.value.resume_after
    assert resume is not None
    kept = await feed.event_changes(rt, org, event.id, after=resume)
    assert [c.type for c in kept.changes] == ["order.created"]
    start_over = await feed.event_changes(rt, org, event.id)  # no cursor: the oldest kept
    assert start_over.changes == kept.changes
    # Pruned changes live on in the baselines: the log still replays to the counters.
    assert await _no_drift(rt) == []


async def test_retention_keeps_what_a_consumer_still_needs(
    fresh: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = fresh
    start = datetime.fromisoformat("2026-01-10T09:00:00+00:00")
    rt.clock = lambda: start
    org = organizer(ORG)
    event = await events.create_event(rt, org, EventDraft(name="Kept"))
    await positioned(rt)
    needed = (await feed.event_changes(rt, org, event.id)).changes[0].cursor

    async def webhook_endpoints(_tx: Tx) -> int | None:
        return decode_cursor(needed)  # has not taken the event's first change yet

    monkeypatch.setattr(changes, "RETAINERS", [])
    changes.retain_for(webhook_endpoints)
    rt.clock = lambda: start + timedelta(days=60)
    assert await retention.prune_changes(rt) == 0
    monkeypatch.setattr(changes, "RETAINERS", [])
    assert await retention.prune_changes(rt) == 1


async def test_reconcile_replays_the_log_and_reports_a_tampered_change(runtime: Runtime) -> None:
    org = organizer(ORG)
    event = await events.create_event(runtime, org, EventDraft(name="Tamper"))
    tt = await tickets.create_ticket_type(
        runtime, org, event.id, TicketTypeDraft(name="GA", quantity_total=10)
    )
    await _orders(runtime, event.id, tt.id, ["tamper-a"])
    assert await _no_drift(runtime) == []
    created = next(c for c in await event_changes(runtime, event.id) if c.type == "order.created")

    async def set_items(quantity: int) -> None:
        async with runtime.db.transaction() as tx:
            row = (await tx.scalars(select(Change).where(Change.id == created.id))).one()
            item = {**row.payload["items"][0], "quantity": quantity}
            row.payload = {**row.payload, "items": [item]}

    await set_items(3)
    try:
        found = await _no_drift(runtime)
        assert found == [f"ticket_types.quantity_reserved of {tt.id}: counter 1, change log says 3"]
        async with runtime.db.transaction() as tx:  # --fix cannot rewrite history
            assert [d.basis for d in await reconcile(tx, fix=True)] == ["change log"]
    finally:
        await set_items(1)
    assert await _no_drift(runtime) == []

    # A counter knocked off: its rows and the log both say so; --fix rebuilds it from its
    # rows, and the log, checked last, agrees with the rebuilt counter.
    async with runtime.db.transaction() as tx:
        row = (await tx.scalars(select(TicketType).where(TicketType.id == tt.id))).one()
        row.quantity_reserved = 2
    async with runtime.db.transaction() as tx:
        knocked = [d for d in await reconcile(tx) if d.row_id == tt.id]
        assert sorted(d.basis for d in knocked) == ["change log", "rows"]
    async with runtime.db.transaction() as tx:
        assert [d.basis for d in await reconcile(tx, fix=True)] == ["rows"]
    assert await _no_drift(runtime) == []


async def _positioned_within(rt: Runtime, event_id: str, seconds: float) -> float:
    """Seconds until the event's first change can be read, failing after `seconds`."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        async with rt.db.snapshot() as tx:
            if await changes.page(tx, after=0, limit=1, event_id=event_id):
                return time.monotonic() - start
        await asyncio.sleep(0.01)
    raise AssertionError(f"not positioned within {seconds}s")


async def test_the_sequencer_loop_positions_what_commits_here_and_elsewhere(
    runtime: Runtime, database_url: str
) -> None:
    """A commit here wakes this process's loop; one made by another process (here: a
    second runtime, as the CLI or a replica that died would be) is found by polling."""
    loop = asyncio.create_task(sequencer.run(runtime))
    elsewhere = Runtime.from_settings(Settings(database_url=database_url, env="test"))
    try:
        here = await events.create_event(runtime, organizer(ORG), EventDraft(name="Here"))
        assert await _positioned_within(runtime, here.id, 2.0) < 1.0
        there = await events.create_event(elsewhere, organizer(ORG), EventDraft(name="There"))
        assert await _positioned_within(runtime, there.id, 2.0) < 1.0
    finally:
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop
        await elsewhere.close()


@pytest.mark.postgres
async def test_a_one_line_orders_change_rides_in_its_hold(postgres_url: str) -> None:
    """No statement of its own: the change row is inserted by the hold's CTE (PostgreSQL),
    and the commit still wakes the sequencer."""
    rt = Runtime.from_settings(Settings(database_url=postgres_url, env="test"))
    sent: list[str] = []

    def seen(*args: Any) -> None:
        sent.append(str(args[2]))

    try:
        org = organizer(ORG)
        event = await events.create_event(rt, org, EventDraft(name="Ride"))
        tt = await tickets.create_ticket_type(
            rt, org, event.id, TicketTypeDraft(name="GA", quantity_total=5)
        )
        woken: list[int] = []
        rt.db.changes_committed = lambda: woken.append(1)
        sa_event.listen(rt.db.engine.sync_engine, "before_cursor_execute", seen)
        await _orders(rt, event.id, tt.id, ["ride-a"])
        assert not [s for s in sent if s.lstrip().upper().startswith("INSERT INTO CHANGES")]
        assert [s for s in sent if "WITH held AS" in s]
        assert woken == [1]
        created = [c for c in await event_changes(rt, event.id) if c.type == "order.created"]
        assert len(created) == 1
        assert created[0].payload["items"][0]["available"] == 4
    finally:
        await rt.close()
