"""Orders: hold on create, sell on payment, release on cancel, refund or expiry.

Every use case here is one transaction. Creating an order validates static terms first
(cheap reads), then reserves every line with the ledger's atomic statements; any
shortfall raises and the whole transaction rolls back, so orders are all-or-nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from pydantic import BaseModel, ConfigDict, Field

from headcount import metrics, origin
from headcount.capacity import keyed, waiting_rooms
from headcount.capacity.batching import NotPlain
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
    TicketTypeTerms,
    check_line,
    normalize_lines,
)
from headcount.ledger import basket as baskets
from headcount.ledger import (
    buyer_limits,
    changes,
    inventory,
    journal,
    listings,
    offers,
    quotas,
    rows,
)
from headcount.ledger import orders as orders_ledger
from headcount.ledger.db import Tx
from headcount.ledger.expiry import expire_due_holds
from headcount.ledger.models import Event, Order
from headcount.ledger.orders import place, place_together
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

    seen: list[baskets.Basket] = []  # what each attempt read: a refusal may mark the type
    held: list[waiting_rooms.PassHeld | None] = []

    async def work(tx: Tx) -> OrderView:
        now = rt.clock()
        if not is_well_formed(draft.event_id):
            raise NotFound(f"no event {draft.event_id!r}")
        if idempotency_key is not None:
            # Behind a waiting room: 403 queue_pass_required without the caller's live
            # pass. A keyed order checks it in the work, so a replay answers without it.
            held.append(await waiting_rooms.require_pass(rt, principal, draft, lines))
        # One lock-free SELECT for the event, the lines' terms, limits, offers and shares
        # (ledger/basket.py); the checks below keep the order of the refusals.
        quota = rt.settings.max_pending_orders_per_user
        basket = await baskets.read(tx, draft.event_id, principal.sub, lines, lock_owner=quota > 0)
        seen.append(basket)
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
        view = _pending_view(rt, principal.sub, draft.event_id, lines, now)
        # Rows first, stock last (ledger/orders.py). One client must not hold a whole stock
        # (ledger/quotas.py; 429 rate_limited): the order row goes in only while its owner
        # holds fewer live orders than the quota.
        await place(tx, _order_row(view, now), lines, quota=quota, owner_locked=True)
        created = record_created(tx, view)
        if basket.offered:
            # The buyer's live waitlist offers pay for their lines (the order takes them over).
            left = await offers.reserve_with_offers(
                tx,
                lines,
                names,
                event_id=draft.event_id,
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
                event_id=draft.event_id,
                early=basket.early,
                versions=basket.versions,
                bucketed=basket.bucketed,
                carrying=created,
            )
        fill_available(created, left)
        return view

    payload = draft.model_dump(mode="json")
    if idempotency_key is None:
        refused = rt.sold_out.refusal(draft.event_id, lines, rt.clock())
        if refused is not None:
            metrics.ORDERS_REFUSED.labels(refused.code).inc()
            _renew_mark_soon(rt, lines[0].ticket_type_id, draft.event_id)
            raise refused

    def keyed_once() -> Awaitable[OrderView]:
        return keyed.once(
            rt,
            principal,
            scope="orders.create",
            key=idempotency_key,
            payload=payload,
            answer=OrderView,
            work=work,
        )

    if idempotency_key is None:
        # A plain batch decides its orders without running `work`: the pass first.
        held.append(await waiting_rooms.require_pass(rt, principal, draft, lines))
    view = await _admit(
        rt, principal.sub, draft, lines, key=idempotency_key, work=work, once=keyed_once, seen=seen
    )
    await waiting_rooms.pass_used(rt, held[-1] if held else None)
    return view


async def _admit(
    rt: Runtime,
    owner: str,
    draft: OrderDraft,
    lines: Sequence[OrderLine],
    *,
    key: str | None,
    work: Callable[[Tx], Coroutine[Any, Any, OrderView]],
    once: Callable[[], Awaitable[OrderView]],
    seen: list[baskets.Basket],
) -> OrderView:
    """The order through its gate (several types) or its type's batch (one type)."""
    if len(lines) != 1:
        async with rt.hold_gates.through(line.ticket_type_id for line in lines):
            return await _create(rt, draft.event_id, lines, once)
    tid = lines[0].ticket_type_id

    async def attempt() -> OrderView:
        if not rt.hold_batches.enabled:
            async with rt.hold_gates.through([tid]):
                return await once()
        # Arrival order within this process: every order for the type queues here, those
        # with a key served alone in their turn (capacity/batching.py).
        if key is not None:
            return cast(OrderView, await rt.hold_batches.alone(tid, once))
        return cast(
            OrderView,
            await rt.hold_batches.hold(
                tid,
                owner,
                work,
                recheck=lambda: rt.sold_out.refusal(draft.event_id, lines, rt.clock()),
                together=(
                    _hold_together,
                    _Plain(rt, owner, draft.event_id, lines[0], origin.current(), seen),
                ),
            ),
        )

    try:
        return await _create(rt, draft.event_id, lines, attempt)
    except (SoldOut, EventFull) as exc:
        if key is None and seen:
            basket, line, refused = seen[-1], lines[0], exc
            await rt.hold_batches.shared(
                f"mark:{line.ticket_type_id}:{line.quantity}",
                lambda: _mark_sold_out(rt, line, draft.event_id, basket, refused),
            )
        raise


def _pending_view(
    rt: Runtime, owner: str, event_id: str, lines: Sequence[OrderLine], now: datetime
) -> OrderView:
    return OrderView(
        id=new_id("ord"),
        event_id=event_id,
        owner_id=owner,
        status=OrderStatus.PENDING,
        expires_at=now + timedelta(seconds=rt.settings.hold_ttl),
        created_at=now,
        paid_at=None,
        items=[
            OrderItemView(ticket_type_id=li.ticket_type_id, quantity=li.quantity) for li in lines
        ],
    )


def _order_row(view: OrderView, now: datetime) -> dict[str, Any]:
    """The order row's columns."""
    return {
        "id": view.id,
        "event_id": view.event_id,
        "owner_id": view.owner_id,
        "status": view.status.value,
        "expires_at": view.expires_at,
        "created_at": now,
        "updated_at": now,
    }


@dataclass(frozen=True, slots=True)
class _Plain:
    """A batched order's part in `_hold_together`."""

    rt: Runtime
    owner: str
    event_id: str
    line: OrderLine
    by: origin.Origin  # its caller, named on its change rows
    seen: list[baskets.Basket]  # the caller's: a refusal may mark the type (soldout.py)


async def _hold_together(tx: Tx, plain: list[_Plain]) -> list[tuple[bool, Any]]:
    """A batch of single-line orders for one one-row ticket type, statement by batch
    rather than by order: one basket read, one offer read, one quota count (the batch
    holds every buyer's lock), one locked read of the stock, one guarded UPDATE by what
    the granted orders take, two multi-row INSERTs, and the change rows in the unit of
    work's one INSERT. Decided per order, in arrival order, in the single path's order
    of refusals: terms, then stock, then the hold limit. Any other shape (pools, an event
    cap, `max_per_customer`, a waitlist offer, buckets, a membership that moved) raises
    `NotPlain`, and the batch runs order by order instead.
    """
    first = plain[0]
    rt, tid, event_id = first.rt, first.line.ticket_type_id, first.event_id
    if any(p.event_id != event_id for p in plain) or not is_well_formed(event_id):
        raise NotPlain
    now = rt.clock()
    basket = await baskets.read(tx, event_id, first.owner, [first.line])
    terms = basket.terms.get(tid)
    if terms is None or basket.shared or basket.customer_limits or basket.bucketed:
        raise NotPlain
    owners = [p.owner for p in plain]
    if await baskets.offered_to(tx, tid, owners):
        raise NotPlain
    for p in plain:
        p.seen.append(basket)  # nobody here holds an offer: the basket holds for each
    quota = rt.settings.max_pending_orders_per_user
    live = await quotas.live_holds_of(tx, owners, now) if quota > 0 else {}
    free = await inventory.locked_free(tx, tid, event_id=event_id)
    if free is None:
        raise NotPlain
    answers: list[tuple[bool, Any]] = []
    granted: list[tuple[_Plain, int]] = []  # (order, stock left after it)
    for p in plain:
        try:
            _admissible(p, terms, free=free, held=live.get(p.owner, 0), quota=quota, now=now)
        except HeadcountError as exc:
            answers.append((False, exc))
            continue
        free -= p.line.quantity
        live[p.owner] = live.get(p.owner, 0) + 1
        granted.append((p, free))
        answers.append((True, None))
    if not granted:
        return answers
    total = sum(p.line.quantity for p, _ in granted)
    held = await inventory.hold_total(tx, tid, total, event_id=event_id)
    if held is None or held[0] != basket.versions.get(tid):
        raise NotPlain
    views = [_pending_view(rt, p.owner, event_id, [p.line], now) for p, _ in granted]
    created = [record_created(tx, v, by=p.by) for v, (p, _) in zip(views, granted, strict=True)]
    for change, (p, left) in zip(created, granted, strict=True):
        fill_available(change, {tid: left})
        if left == 0:
            journal.stock_moved(tx, tid, held[1], available=0, delta=-p.line.quantity)
    # The change rows ride in the items' INSERT, after the stock's lock (ledger/orders.py).
    placed = [_order_row(v, now) for v in views]
    lines = [p.line for p, _ in granted]
    await place_together(tx, placed, lines, [c for c in created if c is not None])
    made = iter(views)
    return [(True, next(made)) if ok else (ok, found) for ok, found in answers]


def _admissible(
    p: _Plain, terms: TicketTypeTerms, *, free: int, held: int, quota: int, now: datetime
) -> None:
    """Raise what the single path would refuse this order with: terms, stock, hold limit."""
    check_line(p.line, terms, event_id=p.event_id, now=now)
    if p.line.quantity > free:
        raise SoldOut(
            f"not enough {terms.name!r} tickets left for {p.line.quantity}",
            ticket_type_id=terms.id,
            requested=p.line.quantity,
        )
    if quota > 0 and held >= quota:
        raise quotas.refusal(held, quota)


async def _mark_sold_out(
    rt: Runtime, line: OrderLine, event_id: str, basket: baskets.Basket, refused: HeadcountError
) -> None:
    """After a refusal for stock: if no room is left at all, mark the type (soldout.py)."""
    terms = basket.terms.get(line.ticket_type_id)
    if terms is None or basket.customer_limits or basket.offered or rt.sold_out.ttl <= 0:
        return
    read_at = time.monotonic()
    async with rt.db.snapshot() as tx:
        if not await inventory.no_room_at_all(tx, line.ticket_type_id, event_id=event_id):
            return
    rt.sold_out.mark(line, event_id, terms, refused, read_at=read_at)


_renewals: set[asyncio.Task[None]] = set()  # held so they are not collected mid-read


def _renew_mark_soon(rt: Runtime, ticket_type_id: str, event_id: str) -> None:
    """Renew the type's mark in the background when it is due (soldout.py, `due`): the
    refusal that asked is answered now, the read runs beside it."""
    if rt.sold_out.due(ticket_type_id):
        task = asyncio.create_task(_renew_mark(rt, ticket_type_id, event_id))
        _renewals.add(task)
        task.add_done_callback(_renewals.discard)


async def _renew_mark(rt: Runtime, ticket_type_id: str, event_id: str) -> None:
    read_at = time.monotonic()
    try:
        async with rt.db.snapshot() as tx:
            terms = await inventory.sold_out_terms(tx, ticket_type_id, event_id=event_id)
    except Exception:  # the database is away: the mark goes, orders ask the database
        log.warning("could not renew the sold-out mark on %s", ticket_type_id, exc_info=True)
        terms = None
    rt.sold_out.renew(ticket_type_id, terms, read_at=read_at)


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
    event_id: str,
    lines: Sequence[OrderLine],
    attempt: Callable[[], Awaitable[OrderView]],
) -> OrderView:
    try:
        try:
            view = await attempt()
        except (SoldOut, EventFull):
            # Lapsed holds may still be counted as reserved until a sweeper runs: release
            # the ones on these ticket types, then ask once more.
            types = [line.ticket_type_id for line in lines]
            lapsed = await rt.hold_batches.shared(
                "expire:" + ",".join(types), lambda: _expire_now(rt, event_id, types)
            )
            if not lapsed:
                raise
            view = await attempt()
    except HeadcountError as exc:
        metrics.ORDERS_REFUSED.labels(exc.code).inc()
        raise
    metrics.ORDERS_CREATED.inc()
    return view


async def _expire_now(rt: Runtime, event_id: str, ticket_type_ids: list[str]) -> int:
    """Release lapsed holds and waitlist offers on these ticket types; how many lapsed."""
    async with rt.db.transaction() as tx:
        now, ttl = rt.clock(), rt.settings.offer_ttl
        journal.stamp(tx, now)
        expired = await expire_due_holds(
            tx, now, event_id=event_id, ticket_type_ids=ticket_type_ids, offer_ttl=ttl
        )
        lapsed = 0
        if due := await offers.due_ticket_types(tx, now, among=ticket_type_ids):
            lapsed = await offers.settle_each_event(tx, due, now, ttl)
    metrics.HOLDS_EXPIRED.inc(len(expired))
    if expired or lapsed:
        rt.sold_out.forget(ticket_type_ids)
    return len(expired) + lapsed


async def _load_order(
    tx: Tx, order_id: str, *, lock: bool = False, event_id: str | None = None
) -> Order:
    if not lock:
        return await rows.find(tx, Order, order_id, noun="order")
    # The locking read names the order's event (docs/scale-out.md); the route names only
    # the order, so its event is looked up first unless the caller already read it.
    event_id = event_id or await orders_ledger.event_of(tx, order_id)
    if event_id is None:
        raise NotFound(f"no order {order_id!r}")
    return await rows.find(tx, Order, order_id, noun="order", lock=True, event_id=event_id)


async def _visible(
    tx: Tx, principal: Principal, order_id: str, *, lock: bool = False, event_id: str | None = None
) -> tuple[Order, Event]:
    """The order and its event, for its owner or the event's organizer; anyone else is told
    there is no such order (not 403: an attendee must not learn that someone else's order
    id exists)."""
    order = await _load_order(tx, order_id, lock=lock, event_id=event_id)
    event = await load_event(tx, order.event_id)
    if principal.sub != order.owner_id and not principal.manages(event.organizer_id):
        raise NotFound(f"no order {order_id!r}")
    return order, event


async def get_order(rt: Runtime, principal: Principal, order_id: str) -> OrderView:
    async with rt.db.snapshot() as tx:
        order, _ = await _visible(tx, principal, order_id)
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
            await inventory.convert_hold(tx, lines_of(order), event_id=order.event_id)
        else:
            await inventory.sell_again(tx, lines_of(order), event_id=order.event_id)
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
            await inventory.release_hold(tx, lines_of(order), event_id=order.event_id)
        elif status is OrderStatus.PAID:
            if not principal.manages(event.organizer_id):
                raise Forbidden("a paid order is refunded by the organizer")
            ended = OrderStatus.REFUNDED
            _record_step(tx, order, ended, rt.clock())
            await inventory.refund(tx, lines_of(order), event_id=order.event_id)
        else:
            return None  # already cancelled, expired or refunded: nothing is held
        # The freed stock goes to the ticket types' waitlists before anyone else sees it.
        types = [li.ticket_type_id for li in order.items]
        await offers.settle(tx, types, rt.clock(), rt.settings.offer_ttl, event_id=order.event_id)
        return ended

    view = await _change(rt, principal, order_id, idempotency_key, step="cancel", change=cancel)
    rt.sold_out.forget(item.ticket_type_id for item in view.items)
    return view


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
    """One order's confirm or cancel: locked, changed once per Idempotency-Key, in its
    ticket type's batch (a one-type order) or behind its types' gates, as a hold on the
    same stock row is: confirms and cancels in a flash sale take no turn in PostgreSQL's
    lock queue of their own (capacity/batching.py)."""
    async with rt.db.snapshot() as tx:
        placed = await orders_ledger.placement(tx, order_id)
    event_id, types = placed if placed is not None else (None, [])

    async def work(tx: Tx) -> OrderView:
        order, event = await _visible(tx, principal, order_id, lock=True, event_id=event_id)
        status = await change(tx, order, event)
        if status is not None:
            now = rt.clock()
            order.status = status
            order.paid_at = now if status is OrderStatus.PAID else order.paid_at
            order.updated_at = now
            await rows.save(tx)
        return OrderView.of(order)

    scope, payload = f"orders.{step}:{order_id}", {"order_id": order_id}

    def run() -> Awaitable[OrderView]:
        return keyed.once(
            rt, principal, scope=scope, key=key, payload=payload, answer=OrderView, work=work
        )

    if len(types) == 1 and rt.hold_batches.enabled:
        # No buyer's lock: a confirm or cancel counts against nobody's hold limit.
        found = await (
            rt.hold_batches.hold(types[0], "", work)
            if key is None
            else rt.hold_batches.alone(types[0], run)
        )
        return cast(OrderView, found)
    async with rt.hold_gates.through(types):
        return await run()


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
        if expired:
            rt.sold_out.forget()
        if len(expired) < batch:
            return total
