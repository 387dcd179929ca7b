"""Ticket types: stock an organizer puts on sale, read by anyone."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from headcount.capacity import pool_membership
from headcount.capacity.events import load_event, require_manager
from headcount.capacity.views import TicketTypeView
from headcount.domain.errors import Conflict, InvalidRequest, NotFound
from headcount.domain.identity import Principal
from headcount.domain.ids import is_well_formed, new_id
from headcount.domain.tickets import MAX_QUANTITY
from headcount.ledger import buckets, draws, locks, offers
from headcount.ledger.expiry import expire_due_holds
from headcount.ledger.models import TicketType
from headcount.runtime import Runtime


class TicketTypeDraft(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=300)
    quantity_total: int = Field(strict=True, ge=0, le=MAX_QUANTITY)
    max_per_order: int | None = Field(strict=True, default=None, ge=1, le=MAX_QUANTITY)
    sales_start: datetime | None = None
    sales_end: datetime | None = None
    min_per_order: int | None = Field(strict=True, default=None, ge=1, le=MAX_QUANTITY)
    max_per_customer: int | None = Field(strict=True, default=None, ge=1, le=MAX_QUANTITY)
    pool_ids: list[str] = Field(default_factory=list, max_length=20)
    stock_buckets: int = Field(
        strict=True,
        default=1,
        ge=1,
        le=buckets.MAX_BUCKETS,
        description="hot-inventory mode: > 1 splits the free stock over that many rows so "
        "buyers do not all queue on one row lock (set at creation)",
    )

    @model_validator(mode="after")
    def _window(self) -> TicketTypeDraft:
        _check_window(self.sales_start, self.sales_end)
        _check_order_bounds(self.min_per_order, self.max_per_order)
        return self


class TicketTypePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=300)
    quantity_total: int | None = Field(strict=True, default=None, ge=0, le=MAX_QUANTITY)
    max_per_order: int | None = Field(strict=True, default=None, ge=1, le=MAX_QUANTITY)
    sales_start: datetime | None = None
    sales_end: datetime | None = None
    min_per_order: int | None = Field(strict=True, default=None, ge=1, le=MAX_QUANTITY)
    max_per_customer: int | None = Field(strict=True, default=None, ge=1, le=MAX_QUANTITY)
    pool_ids: list[str] | None = Field(
        default=None, max_length=20, description="replaces the pools the type draws on"
    )


def _check_order_bounds(low: int | None, high: int | None) -> None:
    if low is not None and high is not None and low > high:
        raise ValueError("min_per_order cannot exceed max_per_order")


def _check_window(start: datetime | None, end: datetime | None) -> None:
    for value in (start, end):
        if value is not None and value.tzinfo is None:
            raise ValueError("times must carry a UTC offset (RFC 3339)")
    if start and end and end <= start:
        raise ValueError("sales_end must be after sales_start")


async def load_ticket_type(tx: AsyncSession, ticket_type_id: str) -> TicketType:
    if not is_well_formed(ticket_type_id):
        raise NotFound(f"no ticket type {ticket_type_id!r}")
    tt = await tx.get(TicketType, ticket_type_id, populate_existing=True)
    if tt is None:
        raise NotFound(f"no ticket type {ticket_type_id!r}")
    return tt


async def create_ticket_type(
    rt: Runtime,
    principal: Principal,
    event_id: str,
    draft: TicketTypeDraft,
    *,
    ticket_type_id: str | None = None,
) -> TicketTypeView:
    now = rt.clock()
    async with rt.db.transaction() as tx:
        event = await load_event(tx, event_id)
        require_manager(principal, event)
        tt = TicketType(
            id=ticket_type_id or new_id("tt"),
            event_id=event.id,
            name=draft.name,
            quantity_total=draft.quantity_total,
            quantity_sold=0,
            quantity_reserved=0,
            max_per_order=draft.max_per_order,
            min_per_order=draft.min_per_order,
            max_per_customer=draft.max_per_customer,
            quantity_over=0,
            stock_buckets=draft.stock_buckets,
            sales_start=draft.sales_start,
            sales_end=draft.sales_end,
            created_at=now,
            updated_at=now,
        )
        tx.add(tt)
        await tx.flush()
        if draft.stock_buckets > 1:
            await buckets.create(tx, tt.id, draft.quantity_total, draft.stock_buckets)
        if draft.pool_ids:
            await pool_membership.set_pools(tx, tt, draft.pool_ids, now)
        return (await ticket_type_views(tx, [tt]))[0]


async def ticket_type_views(tx: AsyncSession, rows: Sequence[TicketType]) -> list[TicketTypeView]:
    """Views whose availability is also bounded by the types' pools and event cap."""
    ids = [tt.id for tt in rows]
    pools = await draws.pool_ids_of(tx, ids)
    room = await draws.headroom(tx, ids)
    hot = await buckets.levels(tx, [tt.id for tt in rows if tt.stock_buckets > 1])
    return [
        TicketTypeView.of(
            tt,
            pool_ids=pools.get(tt.id),
            shared_room=room.get(tt.id),
            bucketed=(lv.sold, lv.held, lv.free) if (lv := hot.get(tt.id)) else None,
        )
        for tt in rows
    ]


async def get_ticket_type(rt: Runtime, ticket_type_id: str) -> TicketTypeView:
    """Due holds are expired first, so a read never shows a lapsed hold as reserved."""
    async with rt.db.transaction() as tx:
        tt = await load_ticket_type(tx, ticket_type_id)
        now, ttl = rt.clock(), rt.settings.offer_ttl
        expired = await expire_due_holds(tx, now, ticket_type_ids=[tt.id], offer_ttl=ttl)
        if due := await offers.due_ticket_types(tx, now, among=[tt.id]):
            await offers.settle(tx, due, now, ttl)
        if expired or due:
            tt = await load_ticket_type(tx, ticket_type_id)
        return (await ticket_type_views(tx, [tt]))[0]


async def list_ticket_types(rt: Runtime, event_id: str) -> list[TicketTypeView]:
    async with rt.db.transaction() as tx:
        event = await load_event(tx, event_id)
        ids = list(await tx.scalars(select(TicketType.id).where(TicketType.event_id == event.id)))
        if ids:
            now, ttl = rt.clock(), rt.settings.offer_ttl
            await expire_due_holds(tx, now, ticket_type_ids=ids, offer_ttl=ttl)
            if due := await offers.due_ticket_types(tx, now, among=ids):
                await offers.settle(tx, due, now, ttl)
        rows = await tx.scalars(
            select(TicketType)
            .where(TicketType.event_id == event.id)
            .order_by(TicketType.created_at, TicketType.id)
            .execution_options(populate_existing=True)
        )
        return await ticket_type_views(tx, list(rows))


async def update_ticket_type(
    rt: Runtime, principal: Principal, ticket_type_id: str, patch: TicketTypePatch
) -> TicketTypeView:
    changes: dict[str, Any] = patch.model_dump(exclude_unset=True)
    for required in ("name", "quantity_total", "pool_ids"):
        if required in changes and changes[required] is None:
            raise InvalidRequest(f"{required} cannot be null")
    pool_ids = changes.pop("pool_ids", None)
    async with rt.db.transaction() as tx:
        tt = await load_ticket_type(tx, ticket_type_id)
        event = await load_event(tx, tt.event_id)
        require_manager(principal, event)
        start = changes.get("sales_start", tt.sales_start)
        end = changes.get("sales_end", tt.sales_end)
        try:
            _check_window(start, end)
            _check_order_bounds(
                changes.get("min_per_order", tt.min_per_order),
                changes.get("max_per_order", tt.max_per_order),
            )
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from exc
        if pool_ids is not None or changes.get("quantity_total") is not None:
            # The settle below promotes this type's event's queues: their rows first, in
            # order, before any pool row moves (docs/concurrency.md, "Pools").
            queued = await draws.waitlisted_neighbours(tx, [tt.id])
            await locks.ticket_types(tx, queued)
        if pool_ids is not None:
            # Detaching frees pool room: the settle below offers it to this type's queue.
            await pool_membership.set_pools(tx, tt, pool_ids, rt.clock())
        new_total = changes.pop("quantity_total", None)
        if new_total is not None:
            await _set_total(tx, tt, new_total)
        if new_total is not None or pool_ids is not None:
            # A larger total frees stock: the waitlist gets it before anyone else can.
            await offers.settle(tx, [tt.id], rt.clock(), rt.settings.offer_ttl)
        if changes:
            changes["updated_at"] = rt.clock()
            await tx.execute(
                update(TicketType)
                .where(TicketType.id == tt.id)
                .values(**changes)
                .execution_options(synchronize_session=False)
            )
        return (await ticket_type_views(tx, [await load_ticket_type(tx, tt.id)]))[0]


async def _set_total(tx: AsyncSession, tt: TicketType, new_total: int) -> None:
    """One atomic UPDATE; a total below what is sold and held is allowed (issue 4).

    Nobody loses a ticket: the overhang is recorded in `quantity_over` in the same
    statement (so the CHECK `sold + reserved <= total + over` still holds), and admission
    keeps requiring `total - sold - reserved >= n`, so nothing is sold until use falls
    below the new total. The view's `over_capacity_by` says how far over it is.
    """
    if tt.stock_buckets > 1:
        await _set_bucketed_total(tx, tt, new_total)
        return
    in_use = TicketType.quantity_sold + TicketType.quantity_reserved
    await tx.execute(
        update(TicketType)
        .where(TicketType.id == tt.id)
        .values(quantity_total=new_total, quantity_over=draws.over_expr(in_use, literal(new_total)))
        .execution_options(synchronize_session=False)
    )


async def _set_bucketed_total(tx: AsyncSession, tt: TicketType, new_total: int) -> None:
    """A bucketed type changes its total through its buckets' free units.

    Raising spreads the new units over the buckets. Lowering withdraws free units under
    the buckets' locks; going below what is sold and held is refused for this mode (the
    free units it would need do not exist), so lower it in steps as holds lapse.
    """
    delta = new_total - tt.quantity_total
    if delta > 0:
        for bucket, extra in enumerate(buckets.split(delta, tt.stock_buckets)):
            if extra:
                await buckets.give_to(tx, tt.id, bucket, extra)
    elif delta < 0:
        removed = await buckets.withdraw(tx, tt.id, -delta)
        if removed < -delta:
            raise Conflict(
                f"only {removed} of the {-delta} units to remove are free; a hot-inventory "
                "type cannot drop below what is sold and held",
                free=removed,
            )
    await tx.execute(
        update(TicketType)
        .where(TicketType.id == tt.id)
        .values(quantity_total=new_total)
        .execution_options(synchronize_session=False)
    )
