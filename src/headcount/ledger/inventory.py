"""The atomic statements that move ticket stock. Never read-then-write in Python.

Each function issues one conditional UPDATE per ticket type, in ascending id order (the
caller passes normalised, sorted lines), inside the caller's transaction. A shortfall
raises, and the caller's transaction rolls back everything reserved before it: orders are
all-or-nothing. On PostgreSQL the row lock taken by UPDATE makes concurrent buyers queue
on the row and re-check the WHERE clause against the committed value; on SQLite
`BEGIN IMMEDIATE` serialises writers. See docs/concurrency.md.

Bucketed ticket types (hot-inventory mode, `ledger/buckets.py`) keep their free stock in
bucket rows: the guarded row statement matches nothing for them and the bucket path runs.

Pools and the event-wide cap ride along: after the ticket-type UPDATEs each
function lets `ledger/draws.py` move the pools (ascending id) and the event counter, so
every caller gets them without changing its call. `convert_hold` moves neither: held and
sold both count as used.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from sqlalchemy import Integer, String, bindparam, literal, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from headcount.domain.errors import EventFull, HoldExpired, PoolExhausted, SoldOut
from headcount.domain.tickets import OrderLine, TicketTypeTerms
from headcount.ledger import basket as baskets
from headcount.ledger import buckets, changes, draws, journal, locks, rows, usage
from headcount.ledger.db import stock_freed
from headcount.ledger.models import TicketType
from headcount.ledger.pools import CapacityPool
from headcount.ledger.types import UTCDateTime

_NO_SYNC = {"synchronize_session": False}
_AVAILABLE = TicketType.quantity_total - TicketType.quantity_sold - TicketType.quantity_reserved
# Every counter statement on the ticket-type row is guarded by this; a bucketed type
# (hot-inventory mode) matches nothing here and takes the `ledger/buckets.py` path instead.
_SINGLE_ROW = TicketType.stock_buckets == 1


# Built once (bench/RESULTS.md: building statements cost more CPU than running them).
_HOLD = (
    update(TicketType)
    .where(
        TicketType.id == bindparam("tid", type_=String),
        TicketType.event_id == bindparam("eid", type_=String),
        _SINGLE_ROW,
        bindparam("qty", type_=Integer) <= _AVAILABLE,
    )
    .values(quantity_reserved=TicketType.quantity_reserved + bindparam("qty", type_=Integer))
    # What is left and whose it is ride along: a sell-out is seen by the statement itself.
    .returning(TicketType.id, TicketType.membership_version, _AVAILABLE, TicketType.event_id)
    .execution_options(**_NO_SYNC)
)


# The hold of a one-line order that draws on no pool and no event cap, with its
# `order.created` riding along (PostgreSQL). The change row is inserted by the statement
# that takes the ticket type's row lock, and that is the transaction's last lock: so, as
# with a row inserted just before COMMIT, a later transaction on the same ticket type
# gets a larger id (ledger/changes.py), and the order costs no statement for its change.
# The INSERT is skipped (and the change left to `flush`) if the membership moved since
# the early read: then pools may be locked after it.
_HOLD_RIDING = text(
    """
    WITH held AS (
        UPDATE ticket_types
           SET quantity_reserved = quantity_reserved + :qty
         WHERE id = :tid AND event_id = :event_id AND stock_buckets = 1
           AND :qty <= quantity_total - quantity_sold - quantity_reserved
     RETURNING id, membership_version,
               quantity_total - quantity_sold - quantity_reserved AS available, event_id
    ), logged AS (
        INSERT INTO changes (event_id, type, resource_type, resource_id, actor_sub,
                             actor_role, request_id, payload, occurred_at)
        SELECT :event_id, :type, :resource_type, :resource_id, :actor_sub, :actor_role,
               :request_id,
               jsonb_set(CAST(:payload AS jsonb), '{items,0,available}',
                         to_jsonb(held.available))::json,
               :occurred_at
          FROM held WHERE held.membership_version = :version
     RETURNING id
    )
    SELECT held.id, held.membership_version, held.available, held.event_id,
           (SELECT count(*) FROM logged) AS logged
      FROM held
    """
).bindparams(
    bindparam("qty", type_=Integer),
    bindparam("version", type_=Integer),
    bindparam("payload", type_=String),
    bindparam("occurred_at", type_=UTCDateTime()),
)


def _riding_version(
    tx: AsyncSession,
    lines: Sequence[OrderLine],
    *,
    carrying: changes.Pending | None,
    versions: Mapping[str, int] | None,
    early: draws.Shares,
    bucketed: Collection[str],
) -> int | None:
    """The membership version a riding hold must still find, or None: no ride."""
    if carrying is None or len(lines) != 1 or versions is None or early:
        return None
    tid = lines[0].ticket_type_id
    if tid in bucketed or tid not in versions or tx.get_bind().dialect.name != "postgresql":
        return None
    return versions[tid]


async def _hold(
    tx: AsyncSession,
    line: OrderLine,
    *,
    event_id: str,
    bucketed: Collection[str],
    ride: int | None,
    carrying: changes.Pending | None,
) -> Any:
    """The line's row hold: (id, membership version, available, event id), or None (a
    bucketed type, or too little left)."""
    if ride is not None and carrying is not None:
        return await _hold_riding(tx, line, ride, carrying)
    if line.ticket_type_id in bucketed:
        return None
    held = {"tid": line.ticket_type_id, "eid": event_id, "qty": line.quantity}
    return (await tx.execute(_HOLD, held)).first()


async def _hold_riding(
    tx: AsyncSession, line: OrderLine, version: int, carrying: changes.Pending
) -> Any:
    row = changes.row_of(carrying)
    found = (
        await tx.execute(
            _HOLD_RIDING,
            {
                **row,
                "payload": json.dumps(row["payload"]),
                "tid": line.ticket_type_id,
                "qty": line.quantity,
                "version": version,
            },
        )
    ).first()
    if found is not None and found[4]:
        changes.written(tx, carrying)
    return found


async def reserve(
    tx: AsyncSession,
    lines: Sequence[OrderLine],
    names: Mapping[str, str] | None = None,
    *,
    event_id: str,
    early: draws.Shares | None = None,
    versions: Mapping[str, int] | None = None,
    bucketed: Collection[str] = (),
    carrying: changes.Pending | None = None,
) -> dict[str, int | None]:
    """Hold stock for every line or raise `SoldOut` naming the first ticket type short.

    `early` is the caller's lock-free read of the lines' shares (`ledger/basket.py`), and
    `versions` the membership versions it saw: when the lines draw on no pool or cap and
    every stock UPDATE returns the version read, the memberships are not read again.
    `bucketed` names the hot-inventory types, which skip the row UPDATE (it matches none).
    Returns each type's own stock left after the hold, as its statement saw it (None for
    a bucketed type: only its emptied buckets are ever summed). A line that empties its
    type records `ticket_type.sold_out`. `carrying`: the order's `order.created`, which
    may ride in the hold itself (`_HOLD_RIDING`).
    """
    if early is None:
        # A first, lock-free read of the committed room: a request that is already short
        # is refused before it queues behind anyone's row lock (admission is the UPDATEs).
        early = await draws.shares(tx, lines, event_id=event_id, lock_event=False)
        versions = None
        if (short_now := early.already_short()) is not None:
            raise await refusal(tx, short_now, lines, names)
    unchanged = versions is not None and not early
    left: dict[str, int | None] = {}
    ride = _riding_version(
        tx, lines, carrying=carrying, versions=versions, early=early, bucketed=bucketed
    )
    for line in lines:
        version, left[line.ticket_type_id] = await _take_own(
            tx, line, names, event_id=event_id, bucketed=bucketed, ride=ride, carrying=carrying
        )
        if versions is None or versions.get(line.ticket_type_id) != version:
            unchanged = False
    if unchanged:
        return left
    # Memberships read again now that the ticket-type rows are ours: they cannot change
    # until COMMIT (see `draws.shares`).
    short = await draws.draw(tx, lines, event_id=event_id)
    if short is not None:
        raise await refusal(tx, short, lines)
    return left


async def _take_own(
    tx: AsyncSession,
    line: OrderLine,
    names: Mapping[str, str] | None,
    *,
    event_id: str,
    bucketed: Collection[str] = (),
    ride: int | None = None,
    carrying: changes.Pending | None = None,
) -> tuple[int, int | None]:
    """Hold the line from its type's own stock (row or buckets) or raise `SoldOut`:
    (the membership version seen, own stock left; None for a bucketed type)."""
    held = await _hold(tx, line, event_id=event_id, bucketed=bucketed, ride=ride, carrying=carrying)
    if held is None:
        # Bucket mode: the take holds the type's row SHARE and reads the version there.
        version = await buckets.take(tx, line.ticket_type_id, line.quantity, event_id=event_id)
        if version is None:
            name = (names or {}).get(line.ticket_type_id, line.ticket_type_id)
            raise SoldOut(
                f"not enough {name!r} tickets left for {line.quantity}",
                ticket_type_id=line.ticket_type_id,
                requested=line.quantity,
            )
        return version, None
    if held[2] == 0:
        journal.stock_moved(tx, line.ticket_type_id, held[3], available=0, delta=-line.quantity)
    return held[1], held[2]


async def reserve_own(
    tx: AsyncSession, line: OrderLine, names: Mapping[str, str] | None = None, *, event_id: str
) -> None:
    """Hold the line from its type's own stock only, or raise `SoldOut`: a redemption of a
    pool hold, whose pool and event cap already count the units. The caller reads the
    type's memberships after this (the row is then ours, so they cannot change)."""
    await _take_own(tx, line, names, event_id=event_id)


async def reserve_pool(tx: AsyncSession, pool_id: str, n: int, *, event_id: str) -> None:
    """Take `n` of a pool and of the event cap for a hold on the pool itself, by the
    statements an order's draw runs, or raise `PoolExhausted` / `EventFull` as it would."""
    found = await draws.pool_shares(tx, pool_id, n, event_id=event_id)
    short = await draws.take(tx, found, event_id=event_id)
    if short is not None:
        raise await refusal(tx, short, [], asked=n)


async def release_pool(tx: AsyncSession, pool_id: str, n: int, *, event_id: str) -> list[str]:
    """Give `n` back to a pool and the event cap (a pool hold released); returns the types
    whose queues may take them (the pool's members and every queued type of the event),
    locked before the pool row as the lock order wants, for `offers.settle`."""
    members = (await draws.members(tx, [pool_id])).get(pool_id, [])
    types = sorted({*members, *await draws.queued_ticket_types(tx, event_id)})
    await locks.ticket_types(tx, types, event_id=event_id)
    stock_freed(tx)  # the pool's members, or with a cap any type of the event
    found = await draws.pool_shares(tx, pool_id, n, event_id=event_id)
    await draws.give_back_shares(tx, found, event_id=event_id)
    return types


async def set_total(tx: AsyncSession, tt: TicketType, new_total: int) -> None:
    """A new `quantity_total` in one UPDATE; below what is sold and held is allowed.

    Nobody loses a ticket: the overhang is recorded in `quantity_over` in the same
    statement (so the CHECK `sold + reserved <= total + over` still holds), and admission
    keeps requiring `total - sold - reserved >= n`, so nothing is sold until use falls
    below the new total. The view's `over_capacity_by` says how far over it is. A bucketed
    type keeps no counters on its row: its buckets' free units move instead.
    """
    values: dict[str, Any] = {"quantity_total": new_total}
    if tt.stock_buckets > 1:
        before: int = (await buckets.free_units(tx, [tt.id])).get(tt.id, 0)
        await buckets.resize(
            tx, tt.id, new_total - tt.quantity_total, tt.stock_buckets, event_id=tt.event_id
        )
        await rows.change(tx, TicketType, tt.id, values, event_id=tt.event_id)
        after: int | None = (await buckets.free_units(tx, [tt.id])).get(tt.id, 0)
    else:
        # The caller holds the row (`locks.ticket_types`): what is left cannot move meanwhile.
        locked = await locks.ticket_type(tx, tt.id, event_id=tt.event_id)
        before = locked[0] if locked else 0
        in_use = TicketType.quantity_sold + TicketType.quantity_reserved
        values["quantity_over"] = draws.over_expr(in_use, literal(new_total))
        after = await tx.scalar(
            update(TicketType)
            .where(TicketType.id == tt.id, TicketType.event_id == tt.event_id)
            .values(values)
            .returning(_AVAILABLE)
            .execution_options(**_NO_SYNC)
        )
    now = int(after or 0)
    journal.stock_moved(tx, tt.id, tt.event_id, available=now, delta=now - before)


async def locked_room(tx: AsyncSession, ticket_type_id: str, *, event_id: str) -> int | None:
    """Lock one ticket-type row; returns the stock an offer could take (None: no such row).

    The least of the type's own stock (its buckets', for a hot-inventory type) and the room
    left in its pools and its event's cap, read without locking those rows: a racing buyer
    can still take that room first, so callers reserving it must handle `PoolExhausted` /
    `EventFull`.
    """
    found = await locks.ticket_type(tx, ticket_type_id, event_id=event_id)
    if found is None:
        return None
    own = max(0, found[0])  # negative after a total was lowered below use
    if found[1] > 1:
        own = (await buckets.free_units(tx, [ticket_type_id])).get(ticket_type_id, 0)
    shared = (await draws.headroom(tx, [ticket_type_id])).get(ticket_type_id)
    return own if shared is None else min(own, shared)


async def _lock_neighbours(tx: AsyncSession, lines: Sequence[OrderLine], event_id: str) -> None:
    """Releases free room that other types' queues may now take: lock them first, in order."""
    ids = [li.ticket_type_id for li in lines]
    neighbours = await draws.waitlisted_neighbours(tx, ids, event_id=event_id)
    await locks.ticket_types(tx, neighbours, event_id=event_id)


async def refusal(
    tx: AsyncSession,
    short: draws.Shortfall,
    lines: Sequence[OrderLine],
    names: Mapping[str, str] | None = None,
    *,
    asked: int | None = None,
) -> SoldOut | EventFull:
    """The error naming the capacity that refused (read only on this path); `asked`: the
    units asked for when no lines carry them (a pool hold)."""
    if asked is None:
        asked = sum(line.quantity for line in lines)
    if short.ticket_type_id is not None:
        wanted = next(li.quantity for li in lines if li.ticket_type_id == short.ticket_type_id)
        name = (names or {}).get(short.ticket_type_id, short.ticket_type_id)
        return SoldOut(
            f"not enough {name!r} tickets left for {wanted}",
            ticket_type_id=short.ticket_type_id,
            requested=wanted,
        )
    if short.pool_id is None:
        return EventFull(
            f"the event has no room for {asked} more ticket(s): max_attendees counts "
            "registrations and tickets together",
            event_id=short.event_id,
            requested=asked,
        )
    pool = (
        await tx.execute(
            select(
                CapacityPool.name, CapacityPool.admission_limit, CapacityPool.quantity_used
            ).where(CapacityPool.id == short.pool_id)
        )
    ).one()
    left = max(0, (pool.admission_limit or 0) - pool.quantity_used)
    return PoolExhausted(
        f"pool {pool.name!r} has {left} place(s) left; this order needs more",
        pool_id=short.pool_id,
        pool_name=pool.name,
        remaining=left,
        ticket_type_ids=[line.ticket_type_id for line in lines],
    )


async def release_hold(tx: AsyncSession, lines: Sequence[OrderLine], *, event_id: str) -> None:
    """Give held stock back (cancel or expiry). The CHECK constraint forbids going below 0."""
    await _give_back(tx, lines, TicketType.quantity_reserved, event_id)


async def refund(tx: AsyncSession, lines: Sequence[OrderLine], *, event_id: str) -> None:
    """A paid order refunded: its tickets go back on sale."""
    await _give_back(tx, lines, TicketType.quantity_sold, event_id)


async def _give_back(
    tx: AsyncSession, lines: Sequence[OrderLine], counter: Any, event_id: str
) -> None:
    """Lower `counter` (held or sold) by each line, to the type's row or its buckets.

    The overhang shrinks in the same UPDATE, so the CHECK stays as tight as it can be;
    then the pools and the event counter get the lines back.
    """
    await _lock_neighbours(tx, lines, event_id)
    stock_freed(tx, [line.ticket_type_id for line in lines])
    for line in lines:
        in_use = TicketType.quantity_sold + TicketType.quantity_reserved - line.quantity
        given = await tx.execute(
            update(TicketType)
            .where(
                TicketType.id == line.ticket_type_id, TicketType.event_id == event_id, _SINGLE_ROW
            )
            .values(
                {
                    counter: counter - line.quantity,
                    TicketType.quantity_over: draws.over_expr(in_use, TicketType.quantity_total),
                }
            )
            .returning(_AVAILABLE, TicketType.event_id)
            .execution_options(**_NO_SYNC)
        )
        found = given.first()
        if found is None:
            await buckets.give_line(tx, line.ticket_type_id, line.quantity, event_id=event_id)
        else:
            journal.stock_moved(
                tx, line.ticket_type_id, found[1], available=found[0], delta=line.quantity
            )
    await draws.give_back(tx, lines, event_id=event_id)


async def convert_hold(tx: AsyncSession, lines: Sequence[OrderLine], *, event_id: str) -> None:
    """Payment confirmed: held stock becomes sold, the total in use does not change."""
    for line in lines:
        # A bucketed type keeps no counters on its row: held and sold both leave its
        # buckets alone, so confirming changes nothing there.
        await tx.execute(
            update(TicketType)
            .where(
                TicketType.id == line.ticket_type_id, TicketType.event_id == event_id, _SINGLE_ROW
            )
            .values(
                quantity_reserved=TicketType.quantity_reserved - line.quantity,
                quantity_sold=TicketType.quantity_sold + line.quantity,
            )
            .execution_options(**_NO_SYNC)
        )


async def sell_again(tx: AsyncSession, lines: Sequence[OrderLine], *, event_id: str) -> None:
    """Confirm an order whose hold already expired: sell only if stock still allows."""
    for line in lines:
        sold = await tx.execute(
            update(TicketType)
            .where(
                TicketType.id == line.ticket_type_id,
                TicketType.event_id == event_id,
                _SINGLE_ROW,
                line.quantity <= _AVAILABLE,
            )
            .values(quantity_sold=TicketType.quantity_sold + line.quantity)
            .returning(_AVAILABLE, TicketType.event_id)
            .execution_options(**_NO_SYNC)
        )
        found = sold.first()
        if found is not None:
            if found[0] == 0:
                journal.stock_moved(
                    tx, line.ticket_type_id, found[1], available=0, delta=-line.quantity
                )
        elif await buckets.take(tx, line.ticket_type_id, line.quantity, event_id=event_id) is None:
            raise HoldExpired(
                "the order's hold expired and the tickets were taken by someone else",
                ticket_type_id=line.ticket_type_id,
            )
    short = await draws.draw(tx, lines, event_id=event_id)
    if short is not None:
        refused = await refusal(tx, short, lines)
        raise HoldExpired(
            "the order's hold expired and its shared capacity was taken by someone else: "
            + refused.detail,
            **refused.extra,
        )


async def no_room_at_all(tx: AsyncSession, ticket_type_id: str, *, event_id: str) -> bool:
    """Whether not even one ticket of this type could be held now: its own stock (its
    buckets', if bucketed), its pools or its event's cap is spent, and no live waitlist
    offer holds any of it for a buyer. Read without locks (a sold-out mark's evidence,
    `capacity/soldout.py`): a release after this read is the mark's bounded moment."""
    found = await tx.execute(
        select(_AVAILABLE, TicketType.stock_buckets).where(
            TicketType.id == ticket_type_id, TicketType.event_id == event_id
        )
    )
    row = found.first()
    if row is None:
        return False
    own = int(row[0])
    if row[1] > 1:
        own = (await buckets.free_units(tx, [ticket_type_id])).get(ticket_type_id, 0)
    shared = (await draws.headroom(tx, [ticket_type_id])).get(ticket_type_id)
    if own > 0 and (shared is None or shared > 0):
        return False
    return not await usage.offered(tx, [ticket_type_id])


async def sold_out_terms(
    tx: AsyncSession, ticket_type_id: str, *, event_id: str
) -> TicketTypeTerms | None:
    """The type's terms if a sold-out mark may still stand on it: no room at all
    (`no_room_at_all`) and no `max_per_customer` on it or its pools (that refusal comes
    before stock's). None: the mark must go. Lock-free, for a read-only snapshot."""
    basket = await baskets.read(tx, event_id, "", [OrderLine(ticket_type_id, 1)], locked=False)
    terms = basket.terms.get(ticket_type_id)
    if terms is None or basket.customer_limits:
        return None
    return terms if await no_room_at_all(tx, ticket_type_id, event_id=event_id) else None


async def locked_free(tx: AsyncSession, ticket_type_id: str, *, event_id: str) -> int | None:
    """Lock a one-row type (step 4) and return its free stock; None if bucketed or gone.

    A batch decides its orders' grants from this (`capacity/orders.py`), then takes them
    with `hold_total`."""
    locked = await locks.ticket_type(tx, ticket_type_id, event_id=event_id)
    if locked is None or locked[1] > 1:
        return None
    return locked[0]


async def hold_total(
    tx: AsyncSession, ticket_type_id: str, total: int, *, event_id: str
) -> tuple[int, str, int] | None:
    """A batch's holds in one UPDATE, still guarded (`total <= available`): the locked read
    computed the grants, the guard makes a wrong sum impossible to commit. Returns the
    type's membership version, event id and stock left; None if the guard refused."""
    held = (await tx.execute(_HOLD, {"tid": ticket_type_id, "eid": event_id, "qty": total})).first()
    return None if held is None else (int(held[1]), str(held[3]), int(held[2]))
