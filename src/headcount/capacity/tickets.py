"""Ticket types: stock an organizer puts on sale, read by anyone."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from headcount.capacity import pool_membership
from headcount.capacity.decisions import under_event, under_row
from headcount.capacity.events import load_event
from headcount.capacity.inputs import Patch, new_row
from headcount.capacity.views import TicketTypeView
from headcount.domain.changes import ChangeType
from headcount.domain.errors import InvalidRequest
from headcount.domain.identity import Principal
from headcount.domain.tickets import MAX_QUANTITY
from headcount.ledger import buckets, draws, inventory, journal, listings, locks, offers, rows
from headcount.ledger.db import Tx
from headcount.ledger.models import Event, TicketType
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
    release_after_exit: bool = Field(
        default=False,
        description="a holder leaving the venue gives the ticket back to sale (docs/venue.md)",
    )

    @model_validator(mode="after")
    def _window(self) -> TicketTypeDraft:
        _check_window(self.sales_start, self.sales_end)
        _check_order_bounds(self.min_per_order, self.max_per_order)
        return self


class TicketTypePatch(Patch):
    NULLABLE: ClassVar[frozenset[str]] = frozenset(
        {"max_per_order", "sales_start", "sales_end", "min_per_order", "max_per_customer"}
    )

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
    release_after_exit: bool | None = None


def _check_order_bounds(low: int | None, high: int | None) -> None:
    if low is not None and high is not None and low > high:
        raise ValueError("min_per_order cannot exceed max_per_order")


def _check_window(start: datetime | None, end: datetime | None) -> None:
    for value in (start, end):
        if value is not None and value.tzinfo is None:
            raise ValueError("times must carry a UTC offset (RFC 3339)")
    if start and end and end <= start:
        raise ValueError("sales_end must be after sales_start")


async def load_ticket_type(tx: Tx, ticket_type_id: str) -> TicketType:
    return await rows.find(tx, TicketType, ticket_type_id, noun="ticket type")


async def create_ticket_type(
    rt: Runtime,
    principal: Principal,
    event_id: str,
    draft: TicketTypeDraft,
    *,
    ticket_type_id: str | None = None,
) -> TicketTypeView:
    async with under_event(rt, principal, event_id) as (tx, event, now):
        zero = {"quantity_sold": 0, "quantity_reserved": 0, "quantity_over": 0}
        tt = new_row(TicketType, draft, now, ticket_type_id, "tt", event_id=event.id, **zero)
        await rows.add(tx, tt)
        if draft.stock_buckets > 1:
            await buckets.create(tx, tt.id, tt.event_id, draft.quantity_total, draft.stock_buckets)
        if draft.pool_ids:
            await pool_membership.set_pools(tx, tt, draft.pool_ids, now)
        view = (await ticket_type_views(tx, [tt]))[0]
        journal.audit(
            tx, ChangeType.TICKET_TYPE_CREATED, ("ticket_type", tt), None, _definition(view), at=now
        )
        return view


def _definition(view: TicketTypeView) -> dict[str, object]:
    """What an organizer sets on a ticket type (its draft), as the audit trail shows it."""
    return view.model_dump(include=set(TicketTypeDraft.model_fields))


async def ticket_type_views(tx: Tx, types: Sequence[TicketType]) -> list[TicketTypeView]:
    """Views whose availability is also bounded by the types' pools and event cap."""
    ids = [tt.id for tt in types]
    pools = await draws.pool_ids_of(tx, ids)
    room = await draws.headroom(tx, ids)
    hot = await buckets.levels(tx, [tt.id for tt in types if tt.stock_buckets > 1])
    return [
        TicketTypeView.of(
            tt,
            pool_ids=pools.get(tt.id),
            shared_room=room.get(tt.id),
            bucketed=(lv.sold, lv.held, lv.free) if (lv := hot.get(tt.id)) else None,
        )
        for tt in types
    ]


async def get_ticket_type(rt: Runtime, ticket_type_id: str) -> TicketTypeView:
    """Counters as committed: a lapsed hold counts until the sweeper releases it."""
    async with rt.db.snapshot() as tx:
        return (await ticket_type_views(tx, [await load_ticket_type(tx, ticket_type_id)]))[0]


async def list_ticket_types(rt: Runtime, event_id: str) -> list[TicketTypeView]:
    async with rt.db.snapshot(may_lag=True) as tx:
        return await event_ticket_types(tx, await load_event(tx, event_id))


async def event_ticket_types(tx: Tx, event: Event) -> list[TicketTypeView]:
    """Every ticket type of the event, in the caller's transaction (the snapshot's too)."""
    return await ticket_type_views(tx, await listings.ticket_types(tx, event.id))


async def update_ticket_type(
    rt: Runtime, principal: Principal, ticket_type_id: str, patch: TicketTypePatch
) -> TicketTypeView:
    changes = patch.changes()
    pool_ids = changes.pop("pool_ids", None)
    async with under_row(rt, principal, load_ticket_type, ticket_type_id) as (tx, tt, now):
        before = _definition((await ticket_type_views(tx, [tt]))[0])
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
            queued = await draws.waitlisted_neighbours(tx, [tt.id], event_id=tt.event_id)
            await locks.ticket_types(tx, queued, event_id=tt.event_id)
        if pool_ids is not None:
            # Detaching frees pool room: the settle below offers it to this type's queue.
            await pool_membership.set_pools(tx, tt, pool_ids, rt.clock())
        new_total = changes.pop("quantity_total", None)
        if new_total is not None:
            await inventory.set_total(tx, tt, new_total)
        if new_total is not None or pool_ids is not None:
            # A larger total frees stock: the waitlist gets it before anyone else can.
            ttl = rt.settings.offer_ttl
            await offers.settle(tx, [tt.id], rt.clock(), ttl, event_id=tt.event_id)
        if changes:
            await rows.change(
                tx, TicketType, tt.id, {**changes, "updated_at": now}, event_id=tt.event_id
            )
        view = (await ticket_type_views(tx, [await load_ticket_type(tx, tt.id)]))[0]
        journal.audit(
            tx,
            ChangeType.TICKET_TYPE_CHANGED,
            ("ticket_type", tt),
            before,
            _definition(view),
            at=now,
        )
    # Terms, total or pools changed: this process's sold-out mark may be wrong now.
    rt.sold_out.forget([tt.id])
    return view
