"""Every explicit lock the ledger takes, and the one order they are taken in.

This module is the single entry point for locks, like pretix's `lock_objects`: no other
module writes `FOR UPDATE`, `SKIP LOCKED` or an advisory lock (tests/unit/test_layering.py
fails if one does). A caller either takes a lock now (`user`, `ticket_types`,
`ticket_type`, `session_counters`) or builds its statement — once, at import, where it is
on a hot path — through one of the clauses below (`exclusive`, `no_key_exclusive`,
`shared`, `key_shared`, `claimed`). docs/concurrency.md says why each path locks what it
does; this is the order they all follow.

The lock order. A transaction takes locks in this order and skips the steps it does not
need; no path locks an earlier step while it holds a later one, so no cycle of waits (no
deadlock) can form:

0. The door (docs/venue.md): a scan takes its `credential` advisory lock, then the rows
   of the areas whose occupancy it moves, in ascending id (`areas`). Only scans and an
   organizer's corrections lock these; a `release_after_exit` goes on to steps 3 to 7 from
   here, and nothing at a later step ever waits for a credential or an area.
1. `user`: the buyer's advisory lock (PostgreSQL). Order creation and `max_per_customer`
   only, before any row.
2. The event row: `exclusive` only for an organizer changing it (`PATCH /events`), who
   then locks nothing but the event's counter row (7). Buyers hold it `key_shared`, which
   conflicts with nothing else, so they may take it at any step before 6 (the early basket
   read takes it first; a release, before its pool and counter UPDATEs).
3. Order rows: `exclusive` (confirm, cancel) or `claimed` (the hold sweeper: SKIP LOCKED,
   so replicas sweeping at once never wait on each other).
4. Ticket-type rows, in ascending id: `ticket_types` / `ticket_type`, or the stock UPDATE
   itself (both NO KEY UPDATE, so inserting an order item, whose foreign key takes KEY
   SHARE, never waits on them); `shared` by buyers of a bucketed type. Then that type's
   stock buckets in ascending number (`no_key_exclusive`, the bucket slow path), then,
   if a bucket it took from hit zero, that type's `stock_edge` advisory lock.
5. The attendee's registration row: `exclusive`.
6. Capacity pool rows, in ascending id: their conditional UPDATEs.
7. The event's counter row (`event_capacity`): its conditional UPDATE.
8. Session counter rows, in ascending id: `session_counters`.
9. Waitlist entries and seats of one resource: `exclusive`, or `claimed` for lapsed
   offers; only while holding that resource's row (4 or 8), so they never wait on anyone
   the resource's lock did not already order.

Across events. Rows of two events are never the same rows, and every statement names its
event (docs/scale-out.md). The transactions that span events (the hold and offer
sweepers) take the claims of step 3 first, then work one event at a
time in ascending event id, taking steps 4-9 for that event before the next: so the
order is (event, step, row) and still no cycle can form.

Duties that must run on one replica at a time (retention) take a `singleton` advisory
lock first, without waiting; the sequencer claims its state row `claimed` and takes no
other lock.

One path runs against the order: giving registration places back (cancel, a smaller
party) releases the event's counter row (7) and then offers the place to ticket queues,
whose offers move pool rows (6). A buyer holding a pool and waiting for that counter can
deadlock with it in principle; `Database.atomically` then retries one side whole.

And one more: a batch (capacity/batching.py) runs its holds first, so a confirm or cancel
riding in it locks its order row (3) while the batch already holds the ticket type's row
(4). It waits only on another transaction changing that very order (a second confirm of
it in another process, or the sweeper expiring it in the same instant), which may be
waiting for the row the batch holds: PostgreSQL names the deadlock and `atomically`
retries the batch whole. The change feed's order is why the holds go first.

Webhook rows (ledger/webhooks.py) stand apart: the relay's transactions (fan-out claims
endpoint rows, the sender claims delivery rows, both `claimed`) and the organizer's
webhook requests touch no capacity row, and no capacity path touches them.

On SQLite none of these clauses is rendered and `user` does nothing: every writing
transaction starts with `BEGIN IMMEDIATE` (ledger/db.py), which takes the database write
lock first and so serialises writers whole.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, String, bindparam, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from headcount.ledger.attendance import EventCapacity, SessionCapacity
from headcount.ledger.models import Base, TicketType
from headcount.ledger.venue import Area

Query = TypeVar("Query", bound=Select[*tuple[Any, ...]])

# First key of the two-int advisory lock: keeps our locks apart from anyone else's.
_ADVISORY_NAMESPACE = 0x4843  # "HC"
_STOCK_EDGE_NAMESPACE = 0x4845  # "HE"
_SINGLETON_NAMESPACE = 0x4853  # "HS"
_CREDENTIAL_NAMESPACE = 0x4844  # "HD": the door
_LOCK_USER = text("SELECT pg_advisory_xact_lock(:ns, hashtext(:owner))")
_TRY_LOCK = text("SELECT pg_try_advisory_xact_lock(:ns, hashtext(:name))")


# Clauses: a statement's lock, added where the statement is built.


def exclusive(query: Query) -> Query:
    """`FOR UPDATE`: the rows are about to change and nobody else may change them first."""
    return query.with_for_update()


def no_key_exclusive(query: Query) -> Query:
    """`FOR NO KEY UPDATE`: like a counter UPDATE, so foreign-key checks pass it."""
    return query.with_for_update(key_share=True)


def shared(query: Query, *, of: type[Base] | None = None) -> Query:
    """`FOR SHARE [OF …]`: holders never wait for each other; anyone changing the row does."""
    return query.with_for_update(read=True, of=of)


def key_shared(query: Query, *, of: type[Base]) -> Query:
    """`FOR KEY SHARE OF …`: waits only for someone taking the row `exclusive`."""
    return query.with_for_update(read=True, key_share=True, of=of)


def claimed(query: Query) -> Query:
    """`FOR UPDATE SKIP LOCKED`: take the rows nobody else holds; skip the rest for now."""
    return query.with_for_update(skip_locked=True)


# Locks taken now.


def user_column(owner: ColumnElement[Any]) -> ColumnElement[Any]:
    """The per-user lock (PostgreSQL) as a column of a caller's earlier SELECT.

    It saves the round trip of `user`. Only what must follow the lock (the quota count)
    has to come in a later statement, which sees every order the user committed before.
    """
    return select(
        func.pg_advisory_xact_lock(_ADVISORY_NAMESPACE, func.hashtext(owner))
    ).scalar_subquery()


async def user(tx: AsyncSession, owner_id: str) -> None:
    """Serialise this user's quota-checked writes until the transaction ends (step 1)."""
    if tx.get_bind().dialect.name == "postgresql":
        await tx.execute(_LOCK_USER, {"ns": _ADVISORY_NAMESPACE, "owner": owner_id})


# Many buyers' locks in one statement, in the order of their keys (not of their names: two
# names may share a key), so two batches locking overlapping sets never wait on each other
# in a cycle. The subquery fixes the order in which the locks are taken.
_LOCK_USERS = text(
    """
    SELECT pg_advisory_xact_lock(:ns, k)
      FROM (SELECT DISTINCT hashtext(o) AS k FROM unnest(CAST(:owners AS text[])) AS o
             ORDER BY k) AS keys
    """
)


async def users(tx: AsyncSession, owner_ids: Sequence[str]) -> None:
    """Every one of these buyers' locks (step 1), for a batch placing their orders together
    (capacity/batching.py): all of them before any row, so each order's own `user` lock
    later is one it already holds."""
    if owner_ids and tx.get_bind().dialect.name == "postgresql":
        await tx.execute(_LOCK_USERS, {"ns": _ADVISORY_NAMESPACE, "owners": list(owner_ids)})


async def stock_edge(tx: AsyncSession, ticket_type_id: str) -> None:
    """A bucketed type's free stock may have crossed zero: serialise the judgment (step 4).

    Buyers of a bucketed type take different buckets in parallel (they share the type's
    row), so two of them can empty the last two buckets at once, each seeing the other's
    bucket still full. Those whose bucket hit zero take this lock, after their bucket and
    before reading the buckets' sum; the second then sees the first's commit, so exactly
    one of them finds the type sold out. Releases need none: they hold the type's row
    exclusively. PostgreSQL only; SQLite serialises whole transactions.
    """
    if tx.get_bind().dialect.name == "postgresql":
        await tx.execute(_LOCK_USER, {"ns": _STOCK_EDGE_NAMESPACE, "owner": ticket_type_id})


async def singleton(tx: AsyncSession, name: str) -> bool:
    """Whether this transaction is the one holder of the duty `name` until it ends; never
    waits (a replica that loses simply skips its turn). Taken before any row lock."""
    if tx.get_bind().dialect.name != "postgresql":
        return True  # BEGIN IMMEDIATE: only one writer runs at all
    return bool(await tx.scalar(_TRY_LOCK, {"ns": _SINGLETON_NAMESPACE, "name": name}))


async def credential(tx: AsyncSession, event_id: str, credential: str) -> None:
    """Serialise the scans of one credential at one event (step 0), whatever gate or area.

    Two gates reading the same person at once would each see them outside and each count
    them (Hi.Events #889); with this lock the second sees the first's commit. PostgreSQL
    only; SQLite's `BEGIN IMMEDIATE` serialises whole transactions.
    """
    if tx.get_bind().dialect.name == "postgresql":
        await tx.execute(
            _LOCK_USER, {"ns": _CREDENTIAL_NAMESPACE, "owner": f"{event_id}/{credential}"}
        )


async def areas(tx: AsyncSession, area_ids: Iterable[str]) -> None:
    """Lock area rows in ascending id (step 0, after the credential), in one statement."""
    ids = sorted(set(area_ids))
    if ids:
        await tx.execute(exclusive(select(Area.id).where(Area.id.in_(ids)).order_by(Area.id)))


async def ticket_types(tx: AsyncSession, ticket_type_ids: Iterable[str], *, event_id: str) -> None:
    """Lock ticket-type rows one by one in ascending id (step 4), before any pool row.

    Not `FOR UPDATE`: that would also wait for the KEY SHARE locks in-flight orders take on
    every type of their basket when inserting items, and could close a cycle with them.
    """
    for tid in sorted(set(ticket_type_ids)):
        await tx.execute(_TICKET_TYPE, {"tid": tid, "eid": event_id})


async def ticket_type(
    tx: AsyncSession, ticket_type_id: str, *, event_id: str
) -> tuple[int, int] | None:
    """Lock one ticket-type row (step 4): its own room and its `stock_buckets`, or None.

    The room is the type's row counters only (negative after a total was lowered below
    use); `inventory.locked_room` adds its buckets and shared limits.
    """
    found = (await tx.execute(_TICKET_TYPE_ROOM, {"tid": ticket_type_id, "eid": event_id})).first()
    return None if found is None else (int(found[0]), int(found[1]))


async def event_counter(tx: AsyncSession, event_id: str) -> tuple[int, int] | None:
    """Lock the event's counter row (step 7): (registered, tickets), or None without one.

    Taken by an organizer changing the cap, so that whether the event is full before and
    after is judged against a count no admission can move meanwhile.
    """
    found = (
        await tx.execute(
            exclusive(
                select(EventCapacity.registered, EventCapacity.tickets).where(
                    EventCapacity.event_id == event_id
                )
            )
        )
    ).first()
    return None if found is None else (int(found[0]), int(found[1]))


async def session_counters(tx: AsyncSession, session_ids: Iterable[str], *, event_id: str) -> None:
    """Lock session counter rows of one event in ascending id (step 8), in one statement."""
    ids = sorted(set(session_ids))
    if ids:
        await tx.execute(
            exclusive(
                select(SessionCapacity.session_id)
                .where(SessionCapacity.event_id == event_id, SessionCapacity.session_id.in_(ids))
                .order_by(SessionCapacity.session_id)
            )
        )


# Every statement names the event as well as the row (docs/scale-out.md).
_ONE_TYPE = (
    TicketType.id == bindparam("tid", type_=String),
    TicketType.event_id == bindparam("eid", type_=String),
)
_TICKET_TYPE = no_key_exclusive(select(TicketType.id).where(*_ONE_TYPE))
_TICKET_TYPE_ROOM = no_key_exclusive(
    select(
        TicketType.quantity_total - TicketType.quantity_sold - TicketType.quantity_reserved,
        TicketType.stock_buckets,
    ).where(*_ONE_TYPE)
)
