"""Ticket types: stock an organizer puts on sale, read by anyone."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from headcount.capacity.events import load_event, require_manager
from headcount.capacity.views import TicketTypeView
from headcount.domain.errors import Conflict, InvalidRequest, NotFound
from headcount.domain.identity import Principal
from headcount.domain.ids import is_well_formed, new_id
from headcount.domain.tickets import MAX_QUANTITY
from headcount.ledger import offers
from headcount.ledger.expiry import expire_due_holds
from headcount.ledger.models import TicketType
from headcount.runtime import Runtime


class TicketTypeDraft(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=300)
    quantity_total: int = Field(ge=0, le=MAX_QUANTITY)
    max_per_order: int | None = Field(default=None, ge=1, le=MAX_QUANTITY)
    sales_start: datetime | None = None
    sales_end: datetime | None = None

    @model_validator(mode="after")
    def _window(self) -> TicketTypeDraft:
        _check_window(self.sales_start, self.sales_end)
        return self


class TicketTypePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=300)
    quantity_total: int | None = Field(default=None, ge=0, le=MAX_QUANTITY)
    max_per_order: int | None = Field(default=None, ge=1, le=MAX_QUANTITY)
    sales_start: datetime | None = None
    sales_end: datetime | None = None


def _check_window(start: datetime | None, end: datetime | None) -> None:
    for value in (start, end):
        if value is not None and value.tzinfo is None:
            raise ValueError("times must carry a UTC offset (RFC 3339)")
    if start and end and end <= start:
        raise ValueError("sales_end must be after sales_start")


async def load_ticket_type(session: AsyncSession, ticket_type_id: str) -> TicketType:
    if not is_well_formed(ticket_type_id):
        raise NotFound(f"no ticket type {ticket_type_id!r}")
    tt = await session.get(TicketType, ticket_type_id, populate_existing=True)
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
    async with rt.db.transaction() as session:
        event = await load_event(session, event_id)
        require_manager(principal, event)
        tt = TicketType(
            id=ticket_type_id or new_id("tt"),
            event_id=event.id,
            name=draft.name,
            quantity_total=draft.quantity_total,
            quantity_sold=0,
            quantity_reserved=0,
            max_per_order=draft.max_per_order,
            sales_start=draft.sales_start,
            sales_end=draft.sales_end,
            created_at=now,
            updated_at=now,
        )
        session.add(tt)
        await session.flush()
        return TicketTypeView.of(tt)


async def get_ticket_type(rt: Runtime, ticket_type_id: str) -> TicketTypeView:
    """Due holds are expired first, so a read never shows a lapsed hold as reserved."""
    async with rt.db.transaction() as session:
        tt = await load_ticket_type(session, ticket_type_id)
        now, ttl = rt.clock(), rt.settings.offer_ttl
        expired = await expire_due_holds(session, now, ticket_type_ids=[tt.id], offer_ttl=ttl)
        if due := await offers.due_ticket_types(session, now, among=[tt.id]):
            await offers.settle(session, due, now, ttl)
        if expired or due:
            tt = await load_ticket_type(session, ticket_type_id)
        return TicketTypeView.of(tt)


async def list_ticket_types(rt: Runtime, event_id: str) -> list[TicketTypeView]:
    async with rt.db.transaction() as session:
        event = await load_event(session, event_id)
        ids = list(
            await session.scalars(select(TicketType.id).where(TicketType.event_id == event.id))
        )
        if ids:
            now, ttl = rt.clock(), rt.settings.offer_ttl
            await expire_due_holds(session, now, ticket_type_ids=ids, offer_ttl=ttl)
            if due := await offers.due_ticket_types(session, now, among=ids):
                await offers.settle(session, due, now, ttl)
        rows = await session.scalars(
            select(TicketType)
            .where(TicketType.event_id == event.id)
            .order_by(TicketType.created_at, TicketType.id)
            .execution_options(populate_existing=True)
        )
        return [TicketTypeView.of(tt) for tt in rows]


async def update_ticket_type(
    rt: Runtime, principal: Principal, ticket_type_id: str, patch: TicketTypePatch
) -> TicketTypeView:
    changes: dict[str, Any] = patch.model_dump(exclude_unset=True)
    for required in ("name", "quantity_total"):
        if required in changes and changes[required] is None:
            raise InvalidRequest(f"{required} cannot be null")
    async with rt.db.transaction() as session:
        tt = await load_ticket_type(session, ticket_type_id)
        event = await load_event(session, tt.event_id)
        require_manager(principal, event)
        start = changes.get("sales_start", tt.sales_start)
        end = changes.get("sales_end", tt.sales_end)
        try:
            _check_window(start, end)
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from exc
        new_total = changes.pop("quantity_total", None)
        if new_total is not None:
            await _set_total(session, tt, new_total)
            # A larger total frees stock: the waitlist gets it before anyone else can.
            await offers.settle(session, [tt.id], rt.clock(), rt.settings.offer_ttl)
        if changes:
            changes["updated_at"] = rt.clock()
            await session.execute(
                update(TicketType)
                .where(TicketType.id == tt.id)
                .values(**changes)
                .execution_options(synchronize_session=False)
            )
        return TicketTypeView.of(await load_ticket_type(session, tt.id))


async def _set_total(session: AsyncSession, tt: TicketType, new_total: int) -> None:
    """Atomic: the new total applies only if it still covers what is sold and held."""
    changed = await session.execute(
        update(TicketType)
        .where(
            TicketType.id == tt.id,
            TicketType.quantity_sold + TicketType.quantity_reserved <= new_total,
        )
        .values(quantity_total=new_total)
        .returning(TicketType.id)
        .execution_options(synchronize_session=False)
    )
    if changed.first() is None:
        current = await load_ticket_type(session, tt.id)
        in_use = current.quantity_sold + current.quantity_reserved
        raise Conflict(
            f"quantity_total {new_total} is below the {in_use} tickets already sold or held; "
            "nobody loses a ticket they hold",
            in_use=in_use,
        )
