"""Organizer holds ("allotments"): stock set aside by name, split, redeemed and released.

Each use case is one transaction, and every unit moves through the statements orders use:
* create: the hold's row, then `inventory.reserve` takes its units exactly as an order's
  hold would (own stock, pools, the event cap; all or nothing), so a flash sale and an
  organizer racing for the last units are decided by the same row locks;
* split: units move from one hold row to a new one; no stock statement runs;
* release: units leave the hold row and go back through `inventory.release_hold`, then
  `offers.settle` offers them to the ticket type's waitlist head before anyone else,
  exactly as a cancelled order's do; a hold's `release_at` does this by itself (the
  sweeper duty `sweep_due_holds`);
* redeem: units leave the hold row and become a buyer's pending order in the same
  transaction; they stay held throughout, so no stock statement runs and nobody can take
  them in between. The order then lives as any order (confirm, cancel, lapse).

A hold is on a ticket type or on a pool alone (`pool_id`): a pool hold takes its units
from the pool's room and the event cap by the statements an order's draw runs
(`inventory.reserve_pool`), and no type's stock. Its release gives them back to both and
settles the queues of the pool's members; its redemption names a member type, whose own
stock the order then takes (`inventory.reserve_own`) while the pool and cap stay as they
are: the hold's units were counted there already.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from headcount import origin
from headcount.capacity import keyed
from headcount.capacity.events import load_event, managed_event
from headcount.capacity.orders import record_created
from headcount.capacity.pool_membership import load_pool
from headcount.capacity.tickets import load_ticket_type
from headcount.capacity.views import (
    OrderItemView,
    OrderView,
    OrganizerHoldSplit,
    OrganizerHoldView,
)
from headcount.domain import allotments as rules
from headcount.domain.changes import ChangeType
from headcount.domain.errors import HoldShort, HoldTarget, InvalidRequest
from headcount.domain.identity import Principal
from headcount.domain.ids import new_id
from headcount.domain.tickets import MAX_QUANTITY, OrderLine, OrderStatus
from headcount.ledger import allotments, draws, inventory, journal, locks, offers, rows
from headcount.ledger.allotments import OrganizerHold
from headcount.ledger.db import Tx
from headcount.ledger.orders import place
from headcount.runtime import Runtime

Code = Field(default=None, min_length=1, max_length=rules.MAX_CODE_LENGTH)


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("release_at needs a time zone (e.g. 2026-05-01T18:00:00Z)")
    return value


class HoldSplitDraft(BaseModel):
    """A new hold's name, size, and its own code and release time (a split inherits none)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=300)
    quantity: int = Field(strict=True, ge=1, le=MAX_QUANTITY)
    redemption_code: str | None = Code
    release_at: datetime | None = None

    _release_at = field_validator("release_at")(_aware)


class HoldDraft(HoldSplitDraft):
    """Exactly one target: a ticket type's stock, or a pool's room (`hold_target` if not)."""

    ticket_type_id: str | None = Field(default=None, min_length=1, max_length=80)
    pool_id: str | None = Field(default=None, min_length=1, max_length=80)


class HoldReleaseDraft(BaseModel):
    """`quantity` null (or absent) releases everything the hold still has."""

    model_config = ConfigDict(extra="forbid")

    quantity: int | None = Field(strict=True, default=None, ge=1, le=MAX_QUANTITY)


class HoldRedeemDraft(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quantity: int = Field(strict=True, default=1, ge=1, le=MAX_QUANTITY)
    code: str | None = Code
    # Which member type the order is for: required for a pool hold, optional (and then
    # the hold's own) for a type hold.
    ticket_type_id: str | None = Field(default=None, min_length=1, max_length=80)


def hold_view(hold: OrganizerHold, **now: object) -> OrganizerHoldView:
    """The hold as its row says, with what this transaction changed by bulk UPDATE (`now`)."""
    return OrganizerHoldView.from_row(hold, **now)


async def create_hold(
    rt: Runtime,
    principal: Principal,
    event_id: str,
    draft: HoldDraft,
    *,
    idempotency_key: str | None = None,
) -> OrganizerHoldView:
    """Take the units out of sale now, or refuse as an order would (`sold_out`, …)."""

    async def work(tx: Tx, now: datetime) -> OrganizerHoldView:
        event = await managed_event(tx, principal, event_id)
        if (draft.ticket_type_id is None) == (draft.pool_id is None):
            raise HoldTarget(
                "give exactly one of ticket_type_id (a type's stock) or pool_id (a pool's room)",
                ticket_type_id=draft.ticket_type_id,
                pool_id=draft.pool_id,
            )
        rules.check_release_at(draft.release_at, now)
        if draft.pool_id is not None:
            return await _create_on_pool(
                tx, draft, pool_id=draft.pool_id, event_id=event.id, by=principal, now=now
            )
        tt = await load_ticket_type(tx, draft.ticket_type_id or "")
        if tt.event_id != event.id:
            raise InvalidRequest(
                f"ticket type {tt.id} belongs to another event", ticket_type_id=tt.id
            )
        # Rows first, stock last (ledger/orders.py): the ticket-type row lock the stock
        # UPDATE takes is then held only until COMMIT.
        hold = await _add(tx, draft, of=(event.id, tt.id, None), by=principal, now=now)
        _record_created(tx, hold, draft, now)
        lines = [OrderLine(tt.id, draft.quantity)]
        await inventory.reserve(tx, lines, {tt.id: tt.name}, event_id=tt.event_id)
        return hold_view(hold)

    step = f"create:{event_id}"
    return await _once(
        rt, principal, step, draft, OrganizerHoldView, key=idempotency_key, work=work
    )


async def _create_on_pool(
    tx: Tx, draft: HoldDraft, *, pool_id: str, event_id: str, by: Principal, now: datetime
) -> OrganizerHoldView:
    """A hold on the pool's room: the pool and the event cap move, no type's stock."""
    pool = await load_pool(tx, pool_id)
    if pool.event_id != event_id:
        raise InvalidRequest(f"pool {pool.id} belongs to another event", pool_id=pool.id)
    hold = await _add(tx, draft, of=(event_id, None, pool.id), by=by, now=now)
    _record_created(tx, hold, draft, now)
    await inventory.reserve_pool(tx, pool.id, draft.quantity, event_id=event_id)
    return hold_view(hold)


async def list_holds(rt: Runtime, principal: Principal, event_id: str) -> list[OrganizerHoldView]:
    async with rt.db.snapshot() as tx:
        event = await managed_event(tx, principal, event_id)
        return [hold_view(h) for h in await allotments.of_event(tx, event.id)]


async def get_hold(
    rt: Runtime, principal: Principal, hold_id: str, *, event_id: str | None = None
) -> OrganizerHoldView:
    async with rt.db.snapshot() as tx:
        hold = await _managed(tx, principal, hold_id, event_id, lock=False)
        return hold_view(hold)


async def split_hold(
    rt: Runtime,
    principal: Principal,
    hold_id: str,
    draft: HoldSplitDraft,
    *,
    idempotency_key: str | None = None,
    event_id: str | None = None,
) -> OrganizerHoldSplit:
    """Move units into a new hold; stock, pools and the event cap do not move."""

    async def work(tx: Tx, now: datetime) -> OrganizerHoldSplit:
        hold = await _managed(tx, principal, hold_id, event_id, lock=True)
        rules.check_release_at(draft.release_at, now)
        left = await _take(tx, hold, draft.quantity, now)
        of = (hold.event_id, hold.ticket_type_id, hold.pool_id)
        split = await _add(tx, draft, of=of, by=principal, now=now)
        _record(
            tx,
            ChangeType.ORGANIZER_HOLD_SPLIT,
            hold,
            moved=draft.quantity,
            remaining=left,
            now=now,
            into_hold_id=split.id,
            into_name=split.name,
        )
        return OrganizerHoldSplit(
            source=hold_view(hold, quantity=left, updated_at=now), split=hold_view(split)
        )

    step = f"split:{hold_id}"
    return await _once(
        rt, principal, step, draft, OrganizerHoldSplit, key=idempotency_key, work=work
    )


async def release_hold(
    rt: Runtime,
    principal: Principal,
    hold_id: str,
    draft: HoldReleaseDraft,
    *,
    idempotency_key: str | None = None,
    event_id: str | None = None,
) -> OrganizerHoldView:
    """Give units back to sale: the ticket type's waitlist head is offered them first."""

    async def work(tx: Tx, now: datetime) -> OrganizerHoldView:
        hold = await _managed(tx, principal, hold_id, event_id, lock=True)
        n = hold.quantity if draft.quantity is None else draft.quantity
        if n == 0:
            return hold_view(hold)  # released already: nothing to give back
        left = await _take(tx, hold, n, now)
        _record(
            tx,
            ChangeType.ORGANIZER_HOLD_RELEASED,
            hold,
            moved=n,
            remaining=left,
            now=now,
            automatic=False,
        )
        if hold.pool_id is not None:
            await _pool_to_public(rt, tx, {hold.pool_id: n}, now, hold.event_id)
        else:
            await _to_public(rt, tx, [OrderLine(_type_of(hold), n)], now, hold.event_id)
        return hold_view(hold, quantity=left, updated_at=now)

    step = f"release:{hold_id}"
    return await _once(
        rt, principal, step, draft, OrganizerHoldView, key=idempotency_key, work=work
    )


async def redeem_hold(
    rt: Runtime,
    principal: Principal,
    hold_id: str,
    draft: HoldRedeemDraft,
    *,
    idempotency_key: str | None = None,
    event_id: str | None = None,
) -> OrderView:
    """Turn units of the hold into the caller's pending order (the code, or the organizer).

    The units stay held throughout: the hold's count falls and the order's items appear in
    one transaction. Sales windows and `max_per_order` do not apply (the organizer chose
    who gets these); the buyer's pending-order quota does.
    """

    async def work(tx: Tx, now: datetime) -> OrderView:
        # Step 1 of the lock order (ledger/locks.py): the buyer's lock before any row.
        await locks.user(tx, principal.sub)
        hold = await _found(tx, hold_id, event_id, lock=True)
        event = await load_event(tx, hold.event_id)
        rules.may_redeem(
            code=hold.redemption_code,
            offered=draft.code,
            manager=principal.manages(event.organizer_id),
        )
        tid = await _redeemed_type(tx, hold, draft.ticket_type_id)
        left = await _take(tx, hold, draft.quantity, now)
        lines = [OrderLine(tid, draft.quantity)]
        if hold.pool_id is not None:
            # The pool and the cap counted these units already; the type's own stock did
            # not. Its membership is read again now that its row is ours (`draws.shares`).
            await inventory.reserve_own(tx, lines[0], event_id=hold.event_id)
            await _redeemed_type(tx, hold, tid)
        view = OrderView(
            id=new_id("ord"),
            event_id=hold.event_id,
            owner_id=principal.sub,
            status=OrderStatus.PENDING,
            expires_at=now + timedelta(seconds=rt.settings.hold_ttl),
            created_at=now,
            paid_at=None,
            items=[OrderItemView(ticket_type_id=tid, quantity=draft.quantity)],
        )
        row = view.model_dump(include={"id", "event_id", "owner_id", "expires_at"})
        await place(
            tx,
            {**row, "status": view.status.value, "created_at": now, "updated_at": now},
            lines,
            quota=rt.settings.max_pending_orders_per_user,
            owner_locked=True,
        )
        _record(
            tx,
            ChangeType.ORGANIZER_HOLD_REDEEMED,
            hold,
            moved=draft.quantity,
            remaining=left,
            now=now,
            order_id=view.id,
            owner_id=view.owner_id,
        )
        record_created(tx, view)
        return view

    step = f"redeem:{hold_id}"
    return await _once(rt, principal, step, draft, OrderView, key=idempotency_key, work=work)


async def sweep_due_holds(rt: Runtime, *, batch: int = 100) -> int:
    """Release every hold whose `release_at` came, a batch per transaction; how many."""
    total = 0
    for pooled in (False, True):
        total += await _sweep(rt, batch=batch, pooled=pooled)
    return total


async def _sweep(rt: Runtime, *, batch: int, pooled: bool) -> int:
    """Type holds, or pool holds (`pooled`), apart: a pool hold's release locks ticket
    types before its pool, which a type hold's release in the same transaction may have
    locked already (docs/concurrency.md)."""
    total = 0
    while True:
        async with rt.db.transaction() as tx:
            now = _now(rt, tx)
            due = await allotments.due(tx, now, limit=batch, pooled=pooled)
            units: dict[tuple[str, str], int] = defaultdict(int)
            due_by = origin.system_within()  # the time came; nobody decided it just now
            for hold in due:
                n = hold.quantity
                if await allotments.take_units(tx, hold.id, n, now, event_id=hold.event_id) is None:
                    continue  # cannot happen under the claim; never give back twice
                units[hold.event_id, hold.pool_id or _type_of(hold)] += n
                _record(
                    tx,
                    ChangeType.ORGANIZER_HOLD_RELEASED,
                    hold,
                    moved=n,
                    remaining=0,
                    now=now,
                    by=due_by,
                    automatic=True,
                )
            # One event at a time, in ascending id: the sweepers' lock order across events.
            for event_id in sorted({event for event, _ in units}):
                mine = {t: n for (e, t), n in sorted(units.items()) if e == event_id}
                if pooled:
                    await _pool_to_public(rt, tx, mine, now, event_id)
                else:
                    lines = [OrderLine(t, n) for t, n in mine.items()]
                    await _to_public(rt, tx, lines, now, event_id)
        total += len(due)
        if len(due) < batch:
            return total


Answer = TypeVar("Answer", bound=BaseModel)


async def _once(
    rt: Runtime,
    principal: Principal,
    step: str,
    draft: BaseModel,
    answer: type[Answer],
    *,
    key: str | None,
    work: Callable[[Tx, datetime], Awaitable[Answer]],
) -> Answer:
    """A decision at one moment, at most once per Idempotency-Key (`holds.<step>:<target>`,
    the draft its payload)."""
    payload = draft.model_dump(mode="json")
    return await keyed.decided(
        rt, principal, f"holds.{step}", payload, key=key, answer=answer, work=work
    )


def _now(rt: Runtime, tx: Tx) -> datetime:
    """The decision's time, stamped on what this transaction records."""
    now = rt.clock()
    journal.stamp(tx, now)
    return now


async def _add(
    tx: Tx,
    draft: HoldSplitDraft,
    *,
    of: tuple[str, str | None, str | None],
    by: Principal,
    now: datetime,
) -> OrganizerHold:
    """A new hold row of `draft` on (event, ticket type or None, pool or None); its units
    are the caller's to account for (taken from stock, or split off another hold)."""
    hold = OrganizerHold(
        id=new_id("hold"),
        event_id=of[0],
        ticket_type_id=of[1],
        pool_id=of[2],
        name=draft.name,
        quantity=draft.quantity,
        redemption_code=draft.redemption_code,
        release_at=draft.release_at,
        created_by=by.sub,
        created_at=now,
        updated_at=now,
    )
    await rows.add(tx, hold)
    return hold


async def _found(tx: Tx, hold_id: str, event_id: str | None, *, lock: bool) -> OrganizerHold:
    """The hold, if it is one of `event_id`'s (when the path names an event)."""
    return await allotments.find(tx, hold_id, event_id=event_id, lock=lock)


async def _managed(
    tx: Tx, principal: Principal, hold_id: str, event_id: str | None, *, lock: bool
) -> OrganizerHold:
    hold = await _found(tx, hold_id, event_id, lock=lock)
    await managed_event(tx, principal, hold.event_id)
    return hold


async def _take(tx: Tx, hold: OrganizerHold, n: int, now: datetime) -> int:
    """Take `n` units off the (locked) hold: what is left, or `hold_short`."""
    rules.take(hold.id, hold.quantity, n)
    left = await allotments.take_units(tx, hold.id, n, now, event_id=hold.event_id)
    if left is None:  # the row lock makes this unreachable; the UPDATE still re-checks
        raise HoldShort("the hold changed meanwhile", hold_id=hold.id, requested=n)
    return left


def _type_of(hold: OrganizerHold) -> str:
    """The ticket type of a hold that is not on a pool (the CHECK `one_target`)."""
    assert hold.ticket_type_id is not None, hold.id
    return hold.ticket_type_id


async def _redeemed_type(tx: Tx, hold: OrganizerHold, asked: str | None) -> str:
    """The type a redemption's order is for: the hold's own, or for a pool hold the
    member type the request names (422 without one, or for a type outside the pool)."""
    if hold.pool_id is None:
        own = _type_of(hold)
        if asked is not None and asked != own:
            raise InvalidRequest(
                f"this hold is on ticket type {own}, not {asked}", ticket_type_id=asked
            )
        return own
    if asked is None:
        raise InvalidRequest(
            "this hold is on a pool: name the member ticket_type_id to redeem",
            pool_id=hold.pool_id,
        )
    if asked not in (await draws.members(tx, [hold.pool_id])).get(hold.pool_id, []):
        raise InvalidRequest(
            f"ticket type {asked} does not draw on pool {hold.pool_id}",
            ticket_type_id=asked,
            pool_id=hold.pool_id,
        )
    return asked


async def _pool_to_public(
    rt: Runtime, tx: Tx, pools: dict[str, int], now: datetime, event_id: str
) -> None:
    """Units of pool holds back in their pools (ascending) and the cap, then offered to
    the queues of the pools' members (and any queued type of the event) first."""
    settle: set[str] = set()
    for pool_id, n in sorted(pools.items()):
        settle.update(await inventory.release_pool(tx, pool_id, n, event_id=event_id))
    await offers.settle(tx, sorted(settle), now, rt.settings.offer_ttl, event_id=event_id)


async def _to_public(
    rt: Runtime, tx: Tx, lines: list[OrderLine], now: datetime, event_id: str
) -> None:
    """Units back on sale, through the path a cancelled order's take: waitlists first."""
    await inventory.release_hold(tx, lines, event_id=event_id)
    types = [li.ticket_type_id for li in lines]
    await offers.settle(tx, types, now, rt.settings.offer_ttl, event_id=event_id)


def _record_created(tx: Tx, hold: OrganizerHold, draft: HoldDraft, now: datetime) -> None:
    _record(
        tx,
        ChangeType.ORGANIZER_HOLD_CREATED,
        hold,
        moved=draft.quantity,
        remaining=draft.quantity,
        now=now,
        release_at=draft.release_at,
        with_code=draft.redemption_code is not None,  # the code itself stays private
    )


def _record(
    tx: Tx,
    type_: ChangeType,
    hold: OrganizerHold,
    *,
    moved: int,
    remaining: int,
    now: datetime,
    by: origin.Origin | None = None,
    **extra: object,
) -> None:
    journal.allotment(
        tx,
        type_,
        hold_id=hold.id,
        event_id=hold.event_id,
        name=hold.name,
        ticket_type_id=hold.ticket_type_id,
        pool_id=hold.pool_id,
        moved=moved,
        remaining=remaining,
        at=now,
        by=by,
        **extra,
    )
