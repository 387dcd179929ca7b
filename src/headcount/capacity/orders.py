"""Orders: hold on create, sell on payment, release on cancel, refund or expiry.

Every use case here is one transaction. Creating an order validates static terms first
(cheap reads), then reserves every line with the ledger's atomic statements; any
shortfall raises and the whole transaction rolls back, so orders are all-or-nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from headcount import metrics
from headcount.capacity.events import load_event
from headcount.capacity.views import OrderItemView, OrderView
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
from headcount.ledger import buyer_limits, inventory, offers, quotas
from headcount.ledger.expiry import expire_due_holds
from headcount.ledger.idempotency import run_idempotent
from headcount.ledger.models import Event, Order, OrderItem
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


# Built once; the ORM's per-call statement building showed in the profile.
_INSERT_ITEM = insert(OrderItem.__table__)  # type: ignore[arg-type]


def lines_of(order: Order) -> list[OrderLine]:
    return [OrderLine(i.ticket_type_id, i.quantity) for i in order.items]


async def create_order(
    rt: Runtime, principal: Principal, draft: OrderDraft, *, idempotency_key: str | None = None
) -> OrderView:
    lines = normalize_lines(
        (OrderLine(i.ticket_type_id, i.quantity) for i in draft.items),
        max_items=rt.settings.max_items_per_order,
    )

    async def work(tx: AsyncSession) -> dict[str, Any]:
        now = rt.clock()
        if not is_well_formed(draft.event_id):
            raise NotFound(f"no event {draft.event_id!r}")
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
        # Rows first, stock last: the ticket-type row locks the reservation takes are then
        # held only until COMMIT, not across these inserts. A hot row's throughput is one
        # over its lock hold time (docs/concurrency.md); a shortfall still rolls all back.
        # One client must not hold a whole stock (ledger/quotas.py; 429 rate_limited): the
        # order row goes in only while its owner holds fewer live orders than the quota.
        await quotas.insert_pending_order(
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
            limit=quota,
            locked=True,
        )
        await tx.execute(
            _INSERT_ITEM,
            [
                {"order_id": view.id, "ticket_type_id": li.ticket_type_id, "quantity": li.quantity}
                for li in lines
            ],
        )
        if basket.offered:
            # The buyer's live waitlist offers pay for their lines (the order takes them over).
            taken = await offers.reserve_with_offers(
                tx, lines, names, owner=principal.sub, now=now, offer_ttl=rt.settings.offer_ttl
            )
            if taken:
                await offers.mark_accepted(tx, taken, view.id)
        else:
            await inventory.reserve(
                tx,
                lines,
                names,
                early=basket.early,
                versions=basket.versions,
                bucketed=basket.bucketed,
            )
        return view.model_dump(mode="json")

    payload = draft.model_dump(mode="json")
    async with rt.hold_gates.through(line.ticket_type_id for line in lines):
        return await _create(
            rt, principal, payload=payload, lines=lines, key=idempotency_key, work=work
        )


async def _create(
    rt: Runtime,
    principal: Principal,
    *,
    lines: Sequence[OrderLine],
    payload: dict[str, Any],
    key: str | None,
    work: Callable[[AsyncSession], Awaitable[dict[str, Any]]],
) -> OrderView:
    try:
        try:
            result = await _keyed(
                rt, principal, "orders.create", key=key, payload=payload, work=work
            )
        except (SoldOut, EventFull):
            # Lapsed holds may still be counted as reserved until a sweeper runs: release
            # the ones on these ticket types, then ask once more.
            if not await _expire_now(rt, [line.ticket_type_id for line in lines]):
                raise
            result = await _keyed(
                rt, principal, "orders.create", key=key, payload=payload, work=work
            )
    except HeadcountError as exc:
        metrics.ORDERS_REFUSED.labels(exc.code).inc()
        raise
    metrics.ORDERS_CREATED.inc()
    return OrderView.model_validate(result)


async def _keyed(
    rt: Runtime,
    principal: Principal,
    scope: str,
    *,
    key: str | None,
    payload: object,
    work: Callable[[AsyncSession], Awaitable[dict[str, Any]]],
) -> dict[str, Any]:
    return await run_idempotent(
        rt.db, owner=principal.sub, scope=scope, key=key, payload=payload, now=rt.clock(), work=work
    )


async def _expire_now(rt: Runtime, ticket_type_ids: list[str]) -> int:
    """Release lapsed holds and waitlist offers on these ticket types; how many lapsed."""
    async with rt.db.transaction() as tx:
        now, ttl = rt.clock(), rt.settings.offer_ttl
        expired = await expire_due_holds(tx, now, ticket_type_ids=ticket_type_ids, offer_ttl=ttl)
        lapsed = 0
        if due := await offers.due_ticket_types(tx, now, among=ticket_type_ids):
            lapsed = await offers.settle(tx, due, now, ttl)
    metrics.HOLDS_EXPIRED.inc(len(expired))
    return len(expired) + lapsed


async def _load_order(tx: AsyncSession, order_id: str, *, lock: bool) -> Order:
    if not is_well_formed(order_id):
        raise NotFound(f"no order {order_id!r}")
    query = select(Order).where(Order.id == order_id).execution_options(populate_existing=True)
    if lock:
        query = query.with_for_update()
    order = (await tx.scalars(query)).first()
    if order is None:
        raise NotFound(f"no order {order_id!r}")
    return order


def _can_see(principal: Principal, order: Order, event: Event) -> bool:
    return principal.sub == order.owner_id or principal.manages(event.organizer_id)


async def get_order(rt: Runtime, principal: Principal, order_id: str) -> OrderView:
    async with rt.db.transaction() as tx:
        order = await _load_order(tx, order_id, lock=False)
        event = await load_event(tx, order.event_id)
        if not _can_see(principal, order, event):
            # Not 403: an attendee must not learn that someone else's order id exists.
            raise NotFound(f"no order {order_id!r}")
        if order.status == OrderStatus.PENDING and order.expires_at <= rt.clock():
            await expire_due_holds(
                tx,
                rt.clock(),
                ticket_type_ids=[i.ticket_type_id for i in order.items],
                offer_ttl=rt.settings.offer_ttl,
            )
            order = await _load_order(tx, order_id, lock=False)
        return OrderView.of(order)


async def list_orders(
    rt: Runtime, principal: Principal, *, event_id: str | None = None, limit: int = 100
) -> list[OrderView]:
    """Attendees see their own orders; an organizer asking about an event sees all of it."""
    async with rt.db.transaction() as tx:
        query = select(Order).order_by(Order.created_at.desc()).limit(limit)
        if event_id is not None:
            event = await load_event(tx, event_id)
            query = query.where(Order.event_id == event.id)
            if not principal.manages(event.organizer_id):
                query = query.where(Order.owner_id == principal.sub)
        else:
            query = query.where(Order.owner_id == principal.sub)
        return [OrderView.of(o) for o in (await tx.scalars(query)).all()]


async def confirm_order(
    rt: Runtime, principal: Principal, order_id: str, *, idempotency_key: str | None = None
) -> OrderView:
    """Payment confirmed: held → sold. A lapsed hold is re-sold if stock still allows."""

    async def work(tx: AsyncSession) -> dict[str, Any]:
        now = rt.clock()
        order = await _load_order(tx, order_id, lock=True)
        event = await load_event(tx, order.event_id)
        if not principal.manages(event.organizer_id):
            if principal.sub == order.owner_id:
                raise Forbidden("payment is confirmed by the organizer or the platform")
            raise NotFound(f"no order {order_id!r}")
        status = OrderStatus(order.status)
        if status is OrderStatus.PAID:
            return OrderView.of(order).model_dump(mode="json")
        if status is OrderStatus.PENDING:
            await inventory.convert_hold(tx, lines_of(order))
        elif status is OrderStatus.EXPIRED:
            await inventory.sell_again(tx, lines_of(order))
        else:
            raise Conflict(
                f"order is {status.value}; it cannot be confirmed", order_status=status.value
            )
        order.status = OrderStatus.PAID
        order.paid_at = now
        order.updated_at = now
        await tx.flush()
        return OrderView.of(order).model_dump(mode="json")

    result = await _keyed(
        rt,
        principal,
        f"orders.confirm:{order_id}",
        key=idempotency_key,
        payload={"order_id": order_id},
        work=work,
    )
    metrics.ORDERS_CONFIRMED.inc()
    return OrderView.model_validate(result)


async def cancel_order(
    rt: Runtime, principal: Principal, order_id: str, *, idempotency_key: str | None = None
) -> OrderView:
    """Pending: the owner (or organizer) releases the hold. Paid: the organizer refunds."""

    async def work(tx: AsyncSession) -> dict[str, Any]:
        now = rt.clock()
        order = await _load_order(tx, order_id, lock=True)
        event = await load_event(tx, order.event_id)
        if not _can_see(principal, order, event):
            raise NotFound(f"no order {order_id!r}")
        status = OrderStatus(order.status)
        if status is OrderStatus.PENDING:
            await inventory.release_hold(tx, lines_of(order))
            await offers.settle(
                tx, [li.ticket_type_id for li in order.items], now, rt.settings.offer_ttl
            )
            order.status = OrderStatus.CANCELLED
        elif status is OrderStatus.PAID:
            if not principal.manages(event.organizer_id):
                raise Forbidden("a paid order is refunded by the organizer")
            await inventory.refund(tx, lines_of(order))
            await offers.settle(
                tx, [li.ticket_type_id for li in order.items], now, rt.settings.offer_ttl
            )
            order.status = OrderStatus.REFUNDED
        else:
            # Already cancelled, expired or refunded: nothing is held, nothing to do.
            return OrderView.of(order).model_dump(mode="json")
        order.updated_at = now
        await tx.flush()
        return OrderView.of(order).model_dump(mode="json")

    result = await _keyed(
        rt,
        principal,
        f"orders.cancel:{order_id}",
        key=idempotency_key,
        payload={"order_id": order_id},
        work=work,
    )
    return OrderView.model_validate(result)


async def sweep_expired_holds(rt: Runtime, *, batch: int = 500) -> int:
    """Expire every due hold, a batch per transaction; returns how many orders expired."""
    total = 0
    while True:
        async with rt.db.transaction() as tx:
            expired = await expire_due_holds(
                tx, rt.clock(), limit=batch, offer_ttl=rt.settings.offer_ttl
            )
        total += len(expired)
        metrics.HOLDS_EXPIRED.inc(len(expired))
        if len(expired) < batch:
            return total
