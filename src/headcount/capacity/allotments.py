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

Holds are on a ticket type. A hold on a pool alone (room in the pool but no type) is not
supported: the ledger proves every pool's use from its member types' rows.
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
from headcount.capacity.tickets import load_ticket_type
from headcount.capacity.views import (
    OrderItemView,
    OrderView,
    OrganizerHoldSplit,
    OrganizerHoldView,
)
from headcount.domain import allotments as rules
from headcount.domain.changes import ChangeType
from headcount.domain.errors import HoldShort, InvalidRequest
from headcount.domain.identity import Principal
from headcount.domain.ids import new_id
from headcount.domain.tickets import MAX_QUANTITY, OrderLine, OrderStatus
from headcount.ledger import allotments, inventory, journal, locks, offers, rows
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
    ticket_type_id: str = Field(min_length=1, max_length=80)


class HoldReleaseDraft(BaseModel):
    """`quantity` null (or absent) releases everything the hold still has."""

    model_config = ConfigDict(extra="forbid")

    quantity: int | None = Field(strict=True, default=None, ge=1, le=MAX_QUANTITY)


class HoldRedeemDraft(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quantity: int = Field(strict=True, default=1, ge=1, le=MAX_QUANTITY)
    code: str | None = Code


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

    async def work(tx: Tx) -> OrganizerHoldView:
        now = _now(rt, tx)
        event = await managed_event(tx, principal, event_id)
        rules.check_release_at(draft.release_at, now)
        tt = await load_ticket_type(tx, draft.ticket_type_id)
        if tt.event_id != event.id:
            raise InvalidRequest(
                f"ticket type {tt.id} belongs to another event", ticket_type_id=tt.id
            )
        # Rows first, stock last (ledger/orders.py): the ticket-type row lock the stock
        # UPDATE takes is then held only until COMMIT.
        hold = await _add(tx, draft, of=(event.id, tt.id), by=principal, now=now)
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
        lines = [OrderLine(tt.id, draft.quantity)]
        await inventory.reserve(tx, lines, {tt.id: tt.name}, event_id=tt.event_id)
        return hold_view(hold)

    return await _once(
        rt,
        principal,
        f"create:{event_id}",
        key=idempotency_key,
        draft=draft,
        answer=OrganizerHoldView,
        work=work,
    )


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

    async def work(tx: Tx) -> OrganizerHoldSplit:
        now = _now(rt, tx)
        hold = await _managed(tx, principal, hold_id, event_id, lock=True)
        rules.check_release_at(draft.release_at, now)
        left = await _take(tx, hold, draft.quantity, now)
        of = (hold.event_id, hold.ticket_type_id)
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

    return await _once(
        rt,
        principal,
        f"split:{hold_id}",
        key=idempotency_key,
        draft=draft,
        answer=OrganizerHoldSplit,
        work=work,
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

    async def work(tx: Tx) -> OrganizerHoldView:
        now = _now(rt, tx)
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
        await _to_public(rt, tx, [OrderLine(hold.ticket_type_id, n)], now, hold.event_id)
        return hold_view(hold, quantity=left, updated_at=now)

    return await _once(
        rt,
        principal,
        f"release:{hold_id}",
        key=idempotency_key,
        draft=draft,
        answer=OrganizerHoldView,
        work=work,
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

    async def work(tx: Tx) -> OrderView:
        now = _now(rt, tx)
        # Step 1 of the lock order (ledger/locks.py): the buyer's lock before any row.
        await locks.user(tx, principal.sub)
        hold = await _found(tx, hold_id, event_id, lock=True)
        event = await load_event(tx, hold.event_id)
        rules.may_redeem(
            code=hold.redemption_code,
            offered=draft.code,
            manager=principal.manages(event.organizer_id),
        )
        left = await _take(tx, hold, draft.quantity, now)
        lines = [OrderLine(hold.ticket_type_id, draft.quantity)]
        view = OrderView(
            id=new_id("ord"),
            event_id=hold.event_id,
            owner_id=principal.sub,
            status=OrderStatus.PENDING,
            expires_at=now + timedelta(seconds=rt.settings.hold_ttl),
            created_at=now,
            paid_at=None,
            items=[OrderItemView(ticket_type_id=hold.ticket_type_id, quantity=draft.quantity)],
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

    return await _once(
        rt,
        principal,
        f"redeem:{hold_id}",
        key=idempotency_key,
        draft=draft,
        answer=OrderView,
        work=work,
    )


async def sweep_due_holds(rt: Runtime, *, batch: int = 100) -> int:
    """Release every hold whose `release_at` came, a batch per transaction; how many."""
    total = 0
    while True:
        async with rt.db.transaction() as tx:
            now = _now(rt, tx)
            due = await allotments.due(tx, now, limit=batch)
            units: dict[tuple[str, str], int] = defaultdict(int)
            due_by = origin.system_within()  # the time came; nobody decided it just now
            for hold in due:
                n = hold.quantity
                if await allotments.take_units(tx, hold.id, n, now, event_id=hold.event_id) is None:
                    continue  # cannot happen under the claim; never give back twice
                units[hold.event_id, hold.ticket_type_id] += n
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
                lines = [OrderLine(t, n) for (e, t), n in sorted(units.items()) if e == event_id]
                await _to_public(rt, tx, lines, now, event_id)
        total += len(due)
        if len(due) < batch:
            return total


Answer = TypeVar("Answer", bound=BaseModel)


async def _once(
    rt: Runtime,
    principal: Principal,
    step: str,
    *,
    key: str | None,
    draft: BaseModel,
    answer: type[Answer],
    work: Callable[[Tx], Awaitable[Answer]],
) -> Answer:
    """One transaction, at most once per Idempotency-Key (`holds.<step>:<target>`)."""
    payload = draft.model_dump(mode="json")
    scope = f"holds.{step}"
    return await keyed.once(
        rt, principal, scope=scope, key=key, payload=payload, answer=answer, work=work
    )


def _now(rt: Runtime, tx: Tx) -> datetime:
    """The decision's time, stamped on what this transaction records."""
    now = rt.clock()
    journal.stamp(tx, now)
    return now


async def _add(
    tx: Tx, draft: HoldSplitDraft, *, of: tuple[str, str], by: Principal, now: datetime
) -> OrganizerHold:
    """A new hold row of `draft` on (event, ticket type); its units are the caller's to
    account for (taken from stock, or split off another hold)."""
    hold = OrganizerHold(
        id=new_id("hold"),
        event_id=of[0],
        ticket_type_id=of[1],
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


async def _to_public(
    rt: Runtime, tx: Tx, lines: list[OrderLine], now: datetime, event_id: str
) -> None:
    """Units back on sale, through the path a cancelled order's take: waitlists first."""
    await inventory.release_hold(tx, lines, event_id=event_id)
    types = [li.ticket_type_id for li in lines]
    await offers.settle(tx, types, now, rt.settings.offer_ttl, event_id=event_id)


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
        moved=moved,
        remaining=remaining,
        at=now,
        by=by,
        **extra,
    )
