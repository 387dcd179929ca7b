"""Every hot-path write names its event, so distributing the ledger by event needs no rewrite.

Under Citus (or any engine sharding by `event_id`) a statement that names its event is
routed to one node; one that does not fans out to every shard, and a locking one is not
allowed at all. This test runs every admission path once — orders (plain, bucketed and
pooled stock) held, confirmed, cancelled, refunded and lapsed; ticket waitlists with offers
accepted, declined and lapsed; registrations; session RSVPs with a waitlist promotion;
huddles; a presence place filled — with the SQL the driver is given captured, and holds
each statement on a distributed table (`ledger/distribution.py`) to the rule:

* UPDATE and DELETE have the event column in their WHERE clause;
* SELECT … FOR UPDATE/SHARE has it for every table it locks;
* INSERT sets it.

The background duties that look for work across all events (due holds and offers, the
sequencer, retention) are the declared exceptions below, each with its reason; what they
then write per hold or offer is held to the rule like any admission.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select

from headcount.api.app import DUTIES
from headcount.capacity import (
    allotments,
    areas,
    events,
    huddles,
    live,
    orders,
    places,
    pools,
    registrations,
    scans,
    sessions,
    tickets,
    waitlists,
)
from headcount.capacity.allotments import HoldDraft, HoldReleaseDraft, HoldSplitDraft
from headcount.capacity.areas import AreaDraft
from headcount.capacity.events import EventDraft, EventPatch
from headcount.capacity.orders import OrderDraft, OrderItemInput
from headcount.capacity.pools import PoolDraft, PoolPatch
from headcount.capacity.registrations import RegistrationDraft
from headcount.capacity.scans import ScanDraft
from headcount.capacity.sequencer import sequence_pending
from headcount.capacity.sessions import SessionDraft, SessionPatch
from headcount.capacity.spaces import (
    BOOTH,
    BREAKOUT_ROOM,
    BoothDraft,
    BoothPatch,
    BreakoutRoomDraft,
    HuddleDraft,
)
from headcount.capacity.tickets import TicketTypeDraft, TicketTypePatch
from headcount.capacity.waitlists import TicketWaitlistDraft
from headcount.domain.errors import HeadcountError
from headcount.ledger.distribution import COPIED, event_column
from headcount.ledger.schema import metadata
from headcount.runtime import Runtime
from support.auth import attendee, organizer

ORG = organizer("org-scoped")

# Statements allowed to span events: (pattern, why). Each is a background duty's search
# for work, or the change log's global order; none is an admission.
CROSS_EVENT: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(r"^SELECT .* FROM orders .*WHERE orders\.status = .* FOR UPDATE SKIP LOCKED"),
        "the hold sweeper's search for due holds in every event",
    ),
    (
        re.compile(
            r"^SELECT .* FROM organizer_holds WHERE organizer_holds\.release_at <= .* SKIP LOCKED"
        ),
        "the organizer-hold sweeper's search for holds whose release time came",
    ),
    (
        re.compile(
            r"^SELECT areas\.id, areas\.event_id FROM areas WHERE areas\.checkout_at IS NOT"
        ),
        "the auto checkout's search for areas whose checkout time came",
    ),
    (
        re.compile(r"^UPDATE changes SET position="),
        "the sequencer: positions order all events' changes (one log, on the coordinator)",
    ),
    (
        re.compile(r"^DELETE FROM changes WHERE changes\.id IN"),
        "retention: deletes the oldest prefix of the one log",
    ),
]

_LOCK = re.compile(r"\bFOR (?:NO KEY )?(?:UPDATE|SHARE)|\bFOR KEY SHARE", re.I)
_WRITE = re.compile(r"^\s*(UPDATE|DELETE FROM|INSERT INTO)\s+\"?(\w+)\"?", re.I)


@dataclass(frozen=True, slots=True)
class Statement:
    sql: str

    @property
    def flat(self) -> str:
        return " ".join(self.sql.split())


def _top_level_where(sql: str) -> str | None:
    """The statement's own WHERE clause (not a subquery's), up to RETURNING/ORDER/FOR."""
    depth, start = 0, None
    upper = sql.upper()
    i = 0
    while i < len(sql):
        ch = sql[i]
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif depth == 0:
            if start is None and upper.startswith(" WHERE ", i):
                start = i + len(" WHERE ")
                i = start
                continue
            if start is not None and any(
                upper.startswith(f" {word} ", i)
                for word in ("RETURNING", "ORDER", "FOR", "GROUP", "LIMIT", "ON")
            ):
                return sql[start:i]
        i += 1
    return sql[start:] if start is not None else None


def _names_event(where: str | None, table: str, column: str) -> bool:
    if where is None:
        return False
    qualified = rf"\b{table}(?:_\d+)?\.{column}\b"
    bare = rf"(?<![\w.]){column}\b"
    return re.search(qualified, where) is not None or (
        column == "event_id" and re.search(bare, where) is not None
    )


def _locked_tables(sql: str) -> list[str]:
    found = re.search(
        r"\bFOR (?:NO KEY |KEY )?(?:UPDATE|SHARE) OF ([\w, ]+?)(?: SKIP| NOWAIT|$)", sql
    )
    if found:
        return [name.strip() for name in found.group(1).split(",")]
    return re.findall(r"\b(?:FROM|JOIN) (\w+)", sql.split(" WHERE ", maxsplit=1)[0])


def violations(statements: list[Statement]) -> list[str]:
    """Each statement on a distributed table that does not name its event, with why."""
    columns = {t.name: event_column(t) for t in metadata.sorted_tables}
    wrong: list[str] = []
    for statement in statements:
        sql = statement.flat
        if any(pattern.search(sql) for pattern, _ in CROSS_EVENT):
            continue
        write = _WRITE.match(sql)
        if write:
            verb, table = write.group(1).upper(), write.group(2)
            column = columns.get(table)
            if column is None:
                continue
            if verb == "INSERT INTO":
                names = re.match(r"^\s*INSERT INTO \"?\w+\"? \(([^)]*)\)", sql)
                if names is None or column not in [
                    n.strip(' "') for n in names.group(1).split(",")
                ]:
                    wrong.append(f"INSERT does not set {table}.{column}: {sql}")
            elif not _names_event(_top_level_where(sql), table, column):
                wrong.append(f"{verb} {table} without {column} in WHERE: {sql}")
        elif sql.upper().startswith("SELECT") and _LOCK.search(sql):
            where = _top_level_where(sql)
            for table in _locked_tables(sql):
                column = columns.get(table)
                if column is not None and not _names_event(where, table, column):
                    wrong.append(f"lock on {table} without {column} in WHERE: {sql}")
    return wrong


@contextmanager
def captured(rt: Runtime) -> Iterator[list[Statement]]:
    """The SQL every statement of `rt`'s primary engine sends, in order."""
    seen: list[Statement] = []

    def before(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        seen.append(Statement(sql))

    engine = rt.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)


async def _refused(work: Any) -> str:
    try:
        await work
    except HeadcountError as exc:
        return exc.code
    raise AssertionError("expected a refusal")


def _order(event_id: str, *lines: tuple[str, int]) -> OrderDraft:
    return OrderDraft(
        event_id=event_id,
        items=[OrderItemInput(ticket_type_id=tid, quantity=q) for tid, q in lines],
    )


async def every_hot_path(rt: Runtime) -> None:
    """One run through each admission, its refusals and its undoing."""
    event_ = await events.create_event(rt, ORG, EventDraft(name="Scoped", max_attendees=40))
    eid = event_.id
    plain = await tickets.create_ticket_type(
        rt, ORG, eid, TicketTypeDraft(name="Plain", quantity_total=2)
    )
    hot = await tickets.create_ticket_type(
        rt, ORG, eid, TicketTypeDraft(name="Hot", quantity_total=4, stock_buckets=2)
    )
    pooled = await tickets.create_ticket_type(
        rt, ORG, eid, TicketTypeDraft(name="Pooled", quantity_total=5)
    )
    await pools.create_pool(
        rt, ORG, eid, PoolDraft(name="Hall", capacity=3, ticket_type_ids=[pooled.id])
    )
    session = await sessions.create_session(
        rt, ORG, eid, SessionDraft(title="Talk", max_participants=1)
    )
    huddle = await huddles.create_huddle(rt, ORG, eid, HuddleDraft(name="H", capacity=1))
    booth = await places.create(rt, ORG, BOOTH, eid, BoothDraft(name="B", max_visitors=1))

    # Orders: held, confirmed, cancelled, refunded; a sold-out refusal; bucket and pool paths.
    ann, bo, cy, di = (attendee(f"scoped-{n}") for n in ("ann", "bo", "cy", "di"))
    paid = await orders.create_order(rt, ann, _order(eid, (plain.id, 1), (hot.id, 1)))
    await orders.confirm_order(rt, ORG, paid.id)
    held = await orders.create_order(rt, bo, _order(eid, (plain.id, 1), (pooled.id, 2)))
    assert await _refused(orders.create_order(rt, cy, _order(eid, (plain.id, 1)))) == "sold_out"
    await orders.create_order(rt, cy, _order(eid, (hot.id, 3)))
    # Waitlist on the sold-out type; a cancel offers the place, the offer is taken by ordering.
    await waitlists.join_ticket_waitlist(rt, cy, plain.id, TicketWaitlistDraft(quantity=1))
    await waitlists.join_ticket_waitlist(rt, di, plain.id, TicketWaitlistDraft(quantity=1))
    await orders.cancel_order(rt, bo, held.id)
    accepted = await orders.create_order(rt, cy, _order(eid, (plain.id, 1)))
    await orders.cancel_order(rt, ORG, paid.id)  # a refund: the place is offered to di
    await waitlists.leave_ticket_waitlist(rt, di, plain.id)  # declined
    await orders.create_order(rt, di, _order(eid, (pooled.id, 1)))

    # Registrations: register, cancel, register again.
    await registrations.register(rt, ann, eid, RegistrationDraft(party_size=2))
    await registrations.cancel_registration(rt, ann, eid)
    await registrations.register(rt, ann, eid, RegistrationDraft(party_size=1))
    await registrations.register(rt, bo, eid, RegistrationDraft(party_size=1))
    # RSVPs: a seat, a waitlisted second, the first leaves and the second is promoted.
    await sessions.rsvp(rt, ann, session.id)
    await sessions.rsvp(rt, bo, session.id)
    await sessions.leave(rt, ann, session.id)
    # Huddles and a presence place (its `.full` change row).
    await huddles.join_huddle(rt, ann, huddle.id)
    assert await _refused(huddles.join_huddle(rt, bo, huddle.id)) == "huddle_full"
    await huddles.leave_huddle(rt, ann, huddle.id)
    await huddles.join_huddle(rt, cy, huddle.id)
    lease = await live.join(rt, bo, BOOTH, booth.id, idempotency_key="scoped-1")
    await live.release(rt, bo, lease.lease_id)

    # The door: a paid ticket in and out of the venue, its unit given back on the way out.
    door = await tickets.create_ticket_type(
        rt, ORG, eid, TicketTypeDraft(name="Door", quantity_total=2, release_after_exit=True)
    )
    guest = await orders.create_order(rt, di, _order(eid, (door.id, 1)))
    await orders.confirm_order(rt, ORG, guest.id)
    venue = await areas.create_area(rt, ORG, eid, AreaDraft(name="Venue", max_occupancy=1))
    for n, direction in enumerate(("entry", "exit")):
        scanned = {"scan_id": f"scoped-{n}", "credential": f"ticket:{guest.id}/{door.id}"}
        draft = ScanDraft.model_validate({**scanned, "direction": direction})
        await scans.scan(rt, ORG, venue.id, draft)
    # Organizer holds: set aside, split, released to the public.
    press = await tickets.create_ticket_type(
        rt, ORG, eid, TicketTypeDraft(name="Press", quantity_total=3)
    )
    kept = await allotments.create_hold(
        rt, ORG, eid, HoldDraft(name="Press", ticket_type_id=press.id, quantity=2)
    )
    await allotments.split_hold(rt, ORG, kept.id, HoldSplitDraft(name="TV", quantity=1))
    await allotments.release_hold(rt, ORG, kept.id, HoldReleaseDraft(quantity=1))

    # Time passes: the holds and a new offer lapse, and the duties sweep them.
    await waitlists.join_ticket_waitlist(rt, bo, plain.id, TicketWaitlistDraft(quantity=1))
    await orders.cancel_order(rt, cy, accepted.id)
    start = rt.clock()
    rt.clock = lambda: start + timedelta(seconds=rt.settings.hold_ttl + 60)
    for duty in DUTIES:
        await duty(rt)
    await sequence_pending(rt)


async def assert_scoped(
    rt: Runtime, run: Callable[[Runtime], Awaitable[None]], *, reached: tuple[str, ...]
) -> None:
    """Every statement `run` sends names its event, and it did write what it should have."""
    with captured(rt) as statements:
        await run(rt)
    seen = [s.flat for s in statements]
    for needle in reached:
        assert any(s.startswith(needle) for s in seen), f"the run never ran {needle}"
    wrong = sorted(set(violations(statements)))
    assert wrong == [], "\n".join(wrong)


async def every_organizer_edit(rt: Runtime) -> None:
    """Not the hot path, but writes all the same: limits and memberships changed while
    people hold and wait, so the edits release, promote and offer too."""
    eid = (await events.create_event(rt, ORG, EventDraft(name="Edited"))).id
    plain = await tickets.create_ticket_type(
        rt, ORG, eid, TicketTypeDraft(name="Plain", quantity_total=1)
    )
    hot = await tickets.create_ticket_type(
        rt, ORG, eid, TicketTypeDraft(name="Hot", quantity_total=4, stock_buckets=2)
    )
    pool = await pools.create_pool(rt, ORG, eid, PoolDraft(name="Hall", capacity=1))
    session = await sessions.create_session(
        rt, ORG, eid, SessionDraft(title="Talk", max_participants=1)
    )
    booth = await places.create(rt, ORG, BOOTH, eid, BoothDraft(name="B", max_visitors=1))
    ann, bo = attendee("edit-ann"), attendee("edit-bo")
    await orders.create_order(rt, ann, _order(eid, (plain.id, 1)))
    await waitlists.join_ticket_waitlist(rt, bo, plain.id, TicketWaitlistDraft(quantity=1))
    for who in (ann, bo):
        await registrations.register(rt, who, eid, RegistrationDraft(party_size=1))
        await sessions.rsvp(rt, who, session.id)
    await tickets.update_ticket_type(rt, ORG, plain.id, TicketTypePatch(quantity_total=2))
    await tickets.update_ticket_type(rt, ORG, hot.id, TicketTypePatch(quantity_total=3))
    await tickets.update_ticket_type(rt, ORG, plain.id, TicketTypePatch(pool_ids=[pool.id]))
    await pools.update_pool(rt, ORG, pool.id, PoolPatch(capacity=3))
    await pools.detach_ticket_type(rt, ORG, pool.id, plain.id)
    await pools.attach_ticket_type(rt, ORG, pool.id, hot.id)
    await sessions.update_session(rt, ORG, session.id, SessionPatch(max_participants=2))
    await events.update_event(rt, ORG, eid, EventPatch(max_attendees=30))
    await events.update_event(rt, ORG, eid, EventPatch(max_attendees=None))
    await places.update(rt, ORG, BOOTH, booth.id, BoothPatch(max_visitors=2))
    room = await places.create(
        rt, ORG, BREAKOUT_ROOM, session.id, BreakoutRoomDraft(name="R", capacity=2)
    )
    await live.close(rt, ORG, BREAKOUT_ROOM, room.id)


# What each run must have written (so a silent path cannot pass vacuously).
HOT_PATH_WRITES = (
    "UPDATE ticket_types",
    "UPDATE ticket_stock_buckets",
    "UPDATE capacity_pools",
    "UPDATE orders",
    "INSERT INTO order_items",
    "UPDATE waitlist_entries",
    "UPDATE event_capacity",
    "UPDATE registrations",
    "UPDATE session_capacity",
    "INSERT INTO session_seats",
    "UPDATE huddles",
    "DELETE FROM huddle_members",
    "INSERT INTO changes",
)
ORGANIZER_EDIT_WRITES = (
    "UPDATE capacity_pools",
    "INSERT INTO ticket_type_pools",
    "DELETE FROM ticket_type_pools",
    "UPDATE booths",
    "UPDATE breakout_rooms",
)


@pytest.mark.parametrize(
    ("run", "reached"),
    [
        pytest.param(every_hot_path, HOT_PATH_WRITES, id="hot-path"),
        pytest.param(every_organizer_edit, ORGANIZER_EDIT_WRITES, id="organizer-edits"),
    ],
)
async def test_every_write_names_its_event(
    runtime: Runtime, run: Callable[[Runtime], Awaitable[None]], reached: tuple[str, ...]
) -> None:
    await assert_scoped(runtime, run, reached=reached)


async def test_copied_event_ids_match_their_parents(runtime: Runtime) -> None:
    """A child's `event_id` is a copy: it must be its parent's, or it would route wrongly."""
    await every_hot_path(runtime)
    async with runtime.db.transaction() as tx:
        for name, (parent_id, parent_name) in COPIED.items():
            child, parent = metadata.tables[name], metadata.tables[parent_name]
            total = await tx.scalar(select(func.count()).select_from(child))
            assert total, f"the run wrote no {name}"
            astray = await tx.scalar(
                select(func.count())
                .select_from(child.join(parent, parent.c.id == child.c[parent_id]))
                .where(parent.c.event_id != child.c.event_id)
            )
            assert astray == 0, name


@pytest.mark.parametrize(
    ("sql", "broken"),
    [
        ("UPDATE orders SET status=$1 WHERE orders.id = $2", True),
        ("UPDATE orders SET status=$1 WHERE orders.id = $2 AND orders.event_id = $3", False),
        (
            "UPDATE ticket_types SET x=(SELECT 1 FROM orders WHERE orders.event_id = $1)"
            " WHERE ticket_types.id = $2",
            True,
        ),
        ("DELETE FROM huddle_members WHERE huddle_members.huddle_id = $1", True),
        ("INSERT INTO order_items (order_id, ticket_type_id, quantity) VALUES ($1, $2, $3)", True),
        (
            "INSERT INTO order_items (order_id, ticket_type_id, event_id, quantity)"
            " VALUES ($1, $2, $3, $4)",
            False,
        ),
        ("SELECT ticket_types.id FROM ticket_types WHERE ticket_types.id = $1 FOR UPDATE", True),
        (
            "SELECT s.x FROM ticket_stock_buckets JOIN ticket_types ON ticket_types.id = "
            "ticket_stock_buckets.ticket_type_id WHERE ticket_stock_buckets.event_id = $1 "
            "FOR SHARE OF ticket_types",
            True,
        ),
        ("SELECT events.id FROM events WHERE events.id = $1 FOR KEY SHARE", False),
        ("UPDATE webhook_endpoints SET enabled=$1 WHERE webhook_endpoints.id = $2", False),
    ],
)
def test_the_rule_catches_what_it_should(sql: str, broken: bool) -> None:
    """The checker itself: a statement that does not name its event is reported."""
    assert bool(violations([Statement(sql)])) is broken
