"""Orders: hold on create, sell on payment, release on cancel, refund or expiry.

Every use case here is one transaction. Creating an order validates static terms first
(cheap reads), then reserves every line with the ledger's atomic statements; any
shortfall raises and the whole transaction rolls back, so orders are all-or-nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from headcount import metrics, origin
from headcount.capacity import keyed, waiting_rooms
from headcount.capacity.events import load_event
from headcount.capacity.views import OrderItemView, OrderView
from headcount.domain.changes import ChangeType
from headcount.domain.errors import (
    Conflict,
    EventFull,
    Forbidden,
    HeadcountError,
    NotFound,
    SoldOut,
)
from headcount.domain.identity import Principal
from headcount.domain.ids import is_well_formed, new_id
from headcount.domain.tickets import (
    MAX_QUANTITY,
    OrderLine,
    OrderStatus,
    check_line,
    normalize_lines,
)
from headcount.ledger import basket as baskets
from headcount.ledger import buyer_limits, changes, inventory, journal, listings, offers, rows
from headcount.ledger.db import Tx
from headcount.ledger.expiry import expire_due_holds
from headcount.ledger.models import Event, Order
from headcount.ledger.orders import place
from headcount.runtime import Runtime

log = logging.getLogger(__name__)


class OrderItemInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ticket_type_id: str = Field(min_length=1, max_length=80)
    # Strict: `true`, `"2"` and `2.0` are not quantities (lax mode would order 1 for `true`).
    quantity: int = Field(ge=1, le=MAX_QUANTITY, strict=True)


class OrderDraft(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_id: str = Field(min_length=1, max_length=80)
    items: list[OrderItemInput] = Field(min_length=1, max_length=100)
    # The waiting room's admission pass, for ticket types behind one (waiting_rooms.py).
    queue_pass: str | None = Field(default=None, min_length=1, max_length=1000)


def lines_of(order: Order) -> list[OrderLine]:
    return [OrderLine(i.ticket_type_id, i.quantity) for i in order.items]


def shown(order: Order, now: datetime) -> OrderView:
    """An order as a read shows it: a pending order past `expires_at` is `expired`.

    Its hold lapsed and protects nothing; the sweeper (or the next admission that needs
    the stock) writes the status and releases the stock. Derived here, so a read never
    writes (docs/guarantees.md, "Reads").
    """
    view = OrderView.of(order)
    if view.status is OrderStatus.PENDING and order.expires_at <= now:
        return view.model_copy(update={"status": OrderStatus.EXPIRED})
    return view


async def create_order(
    rt: Runtime, principal: Principal, draft: OrderDraft, *, idempotency_key: str | None = None
) -> OrderView:
    lines = normalize_lines(
        (OrderLine(i.ticket_type_id, i.quantity) for i in draft.items),
        max_items=rt.settings.max_items_per_order,
    )

    held: list[waiting_rooms.PassHeld | None] = []

    async def work(tx: Tx) -> OrderView:
        now = rt.clock()
        if not is_well_formed(draft.event_id):
            raise NotFound(f"no event {draft.event_id!r}")
        # Behind a waiting room: 403 queue_pass_required without the caller's live pass.
        # Checked in the work, so a replayed Idempotency-Key answers without it.
        held.append(await waiting_rooms.require_pass(rt, principal, draft, lines))
        # One lock-free SELECT for the event, the lines' terms, limits, offers and shares
        # (ledger/basket.py); the checks below keep the order of the refusals.
        quota = rt.settings.max_pending_orders_per_user
        basket = await baskets.read(tx, draft.event_id, principal.sub, lines, lock_owner=quota > 0)
        if not basket.event_found:
            raise NotFound(f"no event {draft.event_id!r}")
        for line in lines:
            found = basket.terms.get(line.ticket_type_id)
            if found is None:
                raise NotFound(f"no ticket type {line.ticket_type_id!r}")
            check_line(line, found, event_id=draft.event_id, now=now)
        # max_per_customer (ticket types and pools): counted under the per-user lock.
        if basket.customer_limits:
            await buyer_limits.admit(tx, principal.sub, lines, now)
        names = {tid: t.name for tid, t in basket.terms.items()}
        for tid in basket.bucketed:
            rt.hold_gates.spread(tid, basket.buckets[tid])
        if not basket.offered and (short := basket.early.already_short()) is not None:
            # Already short before queueing on any lock: refused without writing a row.
            raise await inventory.refusal(tx, short, lines, names)
        view = OrderView(
            id=new_id("ord"),
            event_id=draft.event_id,
            owner_id=principal.sub,
            status=OrderStatus.PENDING,
            expires_at=now + timedelta(seconds=rt.settings.hold_ttl),
            created_at=now,
            paid_at=None,
            items=[
                OrderItemView(ticket_type_id=li.ticket_type_id, quantity=li.quantity)
                for li in lines
            ],
        )
        # Rows first, stock last (ledger/orders.py). One client must not hold a whole stock
        # (ledger/quotas.py; 429 rate_limited): the order row goes in only while its owner
        # holds fewer live orders than the quota.
        await place(
            tx,
            {
                "id": view.id,
                "event_id": view.event_id,
                "owner_id": view.owner_id,
                "status": view.status.value,
                "expires_at": view.expires_at,
                "created_at": now,
                "updated_at": now,
            },
            lines,
            quota=quota,
            owner_locked=True,
        )
        created = record_created(tx, view)
        if basket.offered:
            # The buyer's live waitlist offers pay for their lines (the order takes them over).
            left = await offers.reserve_with_offers(
                tx,
                lines,
                names,
                owner=principal.sub,
                order_id=view.id,
                now=now,
                offer_ttl=rt.settings.offer_ttl,
            )
        else:
            left = await inventory.reserve(
                tx,
                lines,
                names,
                early=basket.early,
                versions=basket.versions,
                bucketed=basket.bucketed,
                carrying=created,
            )
        fill_available(created, left)
        return view

    payload = draft.model_dump(mode="json")
    async with rt.hold_gates.through(line.ticket_type_id for line in lines):
        view = await _create(
            rt, principal, payload=payload, lines=lines, key=idempotency_key, work=work
        )
    await waiting_rooms.pass_used(rt, held[-1] if held else None)
    return view


def record_created(
    tx: Tx, view: OrderView, *, by: origin.Origin | None = None
) -> changes.Pending | None:
    """`order.created`, in the order's transaction, costing no statement of its own: it
    rides in the hold's statement (a one-line order without shared limits, PostgreSQL),
    or else in the unit of work's one change INSERT. Recorded before the stock moves, so
    it comes before an offer the order takes over (a sell-out it causes comes after it
    anyway); the caller passes it to `inventory.reserve` and fills in `available` from
    what that returns (`fill_available`).

    A batch placing several callers' orders in one transaction calls this once per
    order, naming that caller's origin (`by`).
    """
    return journal.order(
        tx,
        ChangeType.ORDER_CREATED,
        order_id=view.id,
        event_id=view.event_id,
        owner_id=view.owner_id,
        status=view.status.value,
        previous_status=None,
        items=[
            {"ticket_type_id": i.ticket_type_id, "quantity": i.quantity, "available": None}
            for i in view.items
        ],
        at=view.created_at,
        by=by,
        expires_at=view.expires_at,
    )


def fill_available(created: changes.Pending | None, left: Mapping[str, int | None]) -> None:
    """Each line's type's own stock right after the hold, as its statement returned it
    (a change that rode in the hold got it there already)."""
    if created is None:
        return
    for item in created.payload["items"]:
        item["available"] = left.get(item["ticket_type_id"])


async def _create(
    rt: Runtime,
    principal: Principal,
    *,
    lines: Sequence[OrderLine],
    payload: dict[str, Any],
    key: str | None,
    work: Callable[[Tx], Awaitable[OrderView]],
) -> OrderView:
    def attempt() -> Awaitable[OrderView]:
        return keyed.once(
            rt,
            principal,
            scope="orders.create",
            key=key,
            payload=payload,
            answer=OrderView,
            work=work,
        )

    try:
        try:
            view = await attempt()
        except (SoldOut, EventFull):
            # Lapsed holds may still be counted as reserved until a sweeper runs: release
            # the ones on these ticket types, then ask once more.
            if not await _expire_now(rt, [line.ticket_type_id for line in lines]):
                raise
            view = await attempt()
    except HeadcountError as exc:
        metrics.ORDERS_REFUSED.labels(exc.code).inc()
        raise
    metrics.ORDERS_CREATED.inc()
    return view


async def _expire_now(rt: Runtime, ticket_type_ids: list[str]) -> int:
    """Release lapsed holds and waitlist offers on these ticket types; how many lapsed."""
    async with rt.db.transaction() as tx:
        now, ttl = rt.clock(), rt.settings.offer_ttl
        journal.stamp(tx, now)
        expired = await expire_due_holds(tx, now, ticket_type_ids=ticket_type_ids, offer_ttl=ttl)
        lapsed = 0
        if due := await offers.due_ticket_types(tx, now, among=ticket_type_ids):
            lapsed = await offers.settle(tx, due, now, ttl)
    metrics.HOLDS_EXPIRED.inc(len(expired))
    return len(expired) + lapsed


async def _load_order(tx: Tx, order_id: str, *, lock: bool = False) -> Order:
    return await rows.find(tx, Order, order_id, noun="order", lock=lock)


def _can_see(principal: Principal, order: Order, event: Event) -> bool:
    return principal.sub == order.owner_id or principal.manages(event.organizer_id)


async def get_order(rt: Runtime, principal: Principal, order_id: str) -> OrderView:
    async with rt.db.snapshot() as tx:
        order = await _load_order(tx, order_id)
        event = await load_event(tx, order.event_id)
        if not _can_see(principal, order, event):
            # Not 403: an attendee must not learn that someone else's order id exists.
            raise NotFound(f"no order {order_id!r}")
        return shown(order, rt.clock())


async def list_orders(
    rt: Runtime, principal: Principal, *, event_id: str | None = None, limit: int = 100
) -> list[OrderView]:
    """Attendees see their own orders; an organizer asking about an event sees all of it."""
    owner: str | None = principal.sub
    async with rt.db.snapshot() as tx:
        if event_id is not None:
            event = await load_event(tx, event_id)
            event_id = event.id
            if principal.manages(event.organizer_id):
                owner = None
        found = await listings.orders(tx, event_id=event_id, owner_id=owner, limit=limit)
        now = rt.clock()
        return [shown(o, now) for o in found]


async def confirm_order(
    rt: Runtime, principal: Principal, order_id: str, *, idempotency_key: str | None = None
) -> OrderView:
    """Payment confirmed: held → sold. A lapsed hold is re-sold if stock still allows."""

    async def confirm(tx: Tx, order: Order, event: Event) -> OrderStatus | None:
        if not principal.manages(event.organizer_id):
            raise Forbidden("payment is confirmed by the organizer or the platform")
        status = OrderStatus(order.status)
        if status is OrderStatus.PAID:
            return None
        if status not in (OrderStatus.PENDING, OrderStatus.EXPIRED):
            raise Conflict(
                f"order is {status.value}; it cannot be confirmed", order_status=status.value
            )
        _record_step(tx, order, OrderStatus.PAID, rt.clock())
        if status is OrderStatus.PENDING:
            await inventory.convert_hold(tx, lines_of(order))
        else:
            await inventory.sell_again(tx, lines_of(order))
        return OrderStatus.PAID

    view = await _change(rt, principal, order_id, idempotency_key, step="confirm", change=confirm)
    metrics.ORDERS_CONFIRMED.inc()
    return view


async def cancel_order(
    rt: Runtime, principal: Principal, order_id: str, *, idempotency_key: str | None = None
) -> OrderView:
    """Pending: the owner (or organizer) releases the hold. Paid: the organizer refunds."""

    async def cancel(tx: Tx, order: Order, event: Event) -> OrderStatus | None:
        status = OrderStatus(order.status)
        if status is OrderStatus.PENDING:
            ended = OrderStatus.CANCELLED
            _record_step(tx, order, ended, rt.clock())
            await inventory.release_hold(tx, lines_of(order))
        elif status is OrderStatus.PAID:
            if not principal.manages(event.organizer_id):
                raise Forbidden("a paid order is refunded by the organizer")
            ended = OrderStatus.REFUNDED
            _record_step(tx, order, ended, rt.clock())
            await inventory.refund(tx, lines_of(order))
        else:
            return None  # already cancelled, expired or refunded: nothing is held
        # The freed stock goes to the ticket types' waitlists before anyone else sees it.
        types = [li.ticket_type_id for li in order.items]
        await offers.settle(tx, types, rt.clock(), rt.settings.offer_ttl)
        return ended

    return await _change(rt, principal, order_id, idempotency_key, step="cancel", change=cancel)


# Decides an order's next status, having moved its stock; None leaves it as it is.
Change = Callable[[Tx, Order, Event], Awaitable[OrderStatus | None]]

_STEPS = {
    OrderStatus.PAID: ChangeType.ORDER_CONFIRMED,
    OrderStatus.CANCELLED: ChangeType.ORDER_CANCELLED,
    OrderStatus.REFUNDED: ChangeType.ORDER_REFUNDED,
}


def _record_step(tx: Tx, order: Order, status: OrderStatus, now: datetime) -> None:
    """An order's confirm, cancel or refund, recorded before the stock it moves."""
    journal.order(
        tx,
        _STEPS[status],
        order_id=order.id,
        event_id=order.event_id,
        owner_id=order.owner_id,
        status=status.value,
        previous_status=order.status,
        items=[{"ticket_type_id": i.ticket_type_id, "quantity": i.quantity} for i in order.items],
        at=now,
    )


async def _change(
    rt: Runtime, principal: Principal, order_id: str, key: str | None, *, step: str, change: Change
) -> OrderView:
    """One order's confirm or cancel: locked, changed once per Idempotency-Key."""

    async def work(tx: Tx) -> OrderView:
        order = await _load_order(tx, order_id, lock=True)
        event = await load_event(tx, order.event_id)
        if not _can_see(principal, order, event):
            # Not 403: an attendee must not learn that someone else's order id exists.
            raise NotFound(f"no order {order_id!r}")
        status = await change(tx, order, event)
        if status is not None:
            now = rt.clock()
            order.status = status
            order.paid_at = now if status is OrderStatus.PAID else order.paid_at
            order.updated_at = now
            await rows.save(tx)
        return OrderView.of(order)

    scope, payload = f"orders.{step}:{order_id}", {"order_id": order_id}
    return await keyed.once(
        rt, principal, scope=scope, key=key, payload=payload, answer=OrderView, work=work
    )


async def sweep_expired_holds(rt: Runtime, *, batch: int = 500) -> int:
    """Expire every due hold, a batch per transaction; returns how many orders expired."""
    total = 0
    while True:
        async with rt.db.transaction() as tx:
            now = rt.clock()
            journal.stamp(tx, now)
            expired = await expire_due_holds(tx, now, limit=batch, offer_ttl=rt.settings.offer_ttl)
        total += len(expired)
        metrics.HOLDS_EXPIRED.inc(len(expired))
        if len(expired) < batch:
            return total
