"""Capacity pools: one quota shared by several ticket types, managed by the organizer.

Rules chosen here (docs/concurrency.md, "Pools", has the locking side):
* A pool belongs to one event; only that event's ticket types may draw on it.
* `capacity` NULL means unlimited (a pool used only for `max_per_customer`, say).
* `overbook_ratio` (opt-in, default 0) admits floor(capacity * (1 + ratio)); the view shows
  the physical `capacity` and the `admission_limit` separately.
* Lowering a capacity below what is held and sold is allowed and cancels nobody: sales
  through the pool stop until use falls below it, and `over_capacity_by` says how far over.
  Raising it frees room at once, and the member types' waitlists get it first.
* Attaching a ticket type that already sold counts its use in the pool at once (possibly
  putting the pool over); detaching gives that use back.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from headcount.capacity.events import load_event, require_manager
from headcount.capacity.pool_membership import load_pool, set_pools
from headcount.capacity.tickets import load_ticket_type
from headcount.capacity.views import EventTotalView, PoolView
from headcount.domain import pools as rules
from headcount.domain.errors import InvalidRequest
from headcount.domain.identity import Principal
from headcount.domain.ids import new_id
from headcount.domain.tickets import MAX_QUANTITY
from headcount.ledger import draws, offers, registrations
from headcount.ledger.models import Event
from headcount.ledger.pools import CapacityPool, TicketTypePool
from headcount.runtime import Runtime


class PoolDraft(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=300)
    capacity: int | None = Field(strict=True, default=None, ge=0, le=MAX_QUANTITY)
    overbook_ratio: float = Field(default=0.0, ge=0, le=rules.MAX_OVERBOOK_RATIO)
    max_per_customer: int | None = Field(strict=True, default=None, ge=1, le=MAX_QUANTITY)
    ticket_type_ids: list[str] = Field(default_factory=list, max_length=100)


class PoolPatch(BaseModel):
    """Only the fields present change; `null` capacity makes the pool unlimited."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=300)
    capacity: int | None = Field(strict=True, default=None, ge=0, le=MAX_QUANTITY)
    overbook_ratio: float | None = Field(default=None, ge=0, le=rules.MAX_OVERBOOK_RATIO)
    max_per_customer: int | None = Field(strict=True, default=None, ge=1, le=MAX_QUANTITY)


def pool_view(pool: CapacityPool, ticket_type_ids: Sequence[str]) -> PoolView:
    left = rules.remaining(pool.quantity_used, pool.admission_limit)
    return PoolView(
        id=pool.id,
        event_id=pool.event_id,
        name=pool.name,
        capacity=pool.capacity,
        overbook_ratio=pool.overbook_ratio,
        admission_limit=pool.admission_limit,
        max_per_customer=pool.max_per_customer,
        quantity_used=pool.quantity_used,
        quantity_available=left,
        over_capacity_by=rules.over_by(pool.quantity_used, pool.admission_limit),
        is_exhausted=left == 0,
        ticket_type_ids=sorted(ticket_type_ids),
        created_at=pool.created_at,
        updated_at=pool.updated_at,
    )


async def pool_views(tx: AsyncSession, event_id: str) -> list[PoolView]:
    rows = list(
        await tx.scalars(
            select(CapacityPool)
            .where(CapacityPool.event_id == event_id)
            .order_by(CapacityPool.created_at, CapacityPool.id)
            .execution_options(populate_existing=True)
        )
    )
    members = await _members(tx, [p.id for p in rows])
    return [pool_view(p, members.get(p.id, [])) for p in rows]


async def event_total_view(tx: AsyncSession, event: Event) -> EventTotalView:
    """The event-wide cap over people: registrations plus tickets held or sold."""
    registered = await registrations.registered(tx, event.id)
    tickets = await registrations.tickets(tx, event.id)
    people = registered + tickets
    return EventTotalView(
        max_attendees=event.max_attendees,
        registered=registered,
        tickets=tickets,
        remaining=rules.remaining(people, event.max_attendees),
        over_capacity_by=rules.over_by(people, event.max_attendees),
    )


async def _members(tx: AsyncSession, pool_ids: Sequence[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    if pool_ids:
        rows = await tx.execute(
            select(TicketTypePool.pool_id, TicketTypePool.ticket_type_id).where(
                TicketTypePool.pool_id.in_(list(pool_ids))
            )
        )
        for pid, tid in rows.all():
            found[pid].append(tid)
    return dict(found)


async def _view(tx: AsyncSession, pool_id: str) -> PoolView:
    pool = await load_pool(tx, pool_id)
    return pool_view(pool, (await _members(tx, [pool.id])).get(pool.id, []))


async def create_pool(
    rt: Runtime,
    principal: Principal,
    event_id: str,
    draft: PoolDraft,
    *,
    pool_id: str | None = None,
) -> PoolView:
    now = rt.clock()
    async with rt.db.transaction() as tx:
        event = await load_event(tx, event_id)
        require_manager(principal, event)
        pool = CapacityPool(
            id=pool_id or new_id("pool"),
            event_id=event.id,
            name=draft.name,
            capacity=draft.capacity,
            overbook_ratio=draft.overbook_ratio,
            admission_limit=rules.admission_limit(draft.capacity, draft.overbook_ratio),
            max_per_customer=draft.max_per_customer,
            quantity_used=0,
            quantity_over=0,
            created_at=now,
            updated_at=now,
        )
        tx.add(pool)
        await tx.flush()
        chosen = [await load_ticket_type(tx, t) for t in sorted(set(draft.ticket_type_ids))]
        # Every ticket-type row before the pool row the first attach moves.
        await draws.lock_for_membership(tx, [tt.id for tt in chosen])
        for tt in chosen:
            await _attach_checked(tx, tt.id, tt.event_id, pool)
        return await _view(tx, pool.id)


async def _attach_checked(
    tx: AsyncSession, ticket_type_id: str, tt_event_id: str, pool: CapacityPool
) -> None:
    if tt_event_id != pool.event_id:
        raise InvalidRequest(
            f"ticket type {ticket_type_id} belongs to another event than pool {pool.id}",
            ticket_type_id=ticket_type_id,
            pool_id=pool.id,
        )
    await draws.lock_for_membership(tx, [ticket_type_id])
    await draws.attach(tx, ticket_type_id, pool.id)


async def list_pools(rt: Runtime, event_id: str) -> list[PoolView]:
    async with rt.db.transaction() as tx:
        event = await load_event(tx, event_id)
        return await pool_views(tx, event.id)


async def get_pool(rt: Runtime, pool_id: str) -> PoolView:
    async with rt.db.transaction() as tx:
        return await _view(tx, pool_id)


async def update_pool(
    rt: Runtime, principal: Principal, pool_id: str, patch: PoolPatch
) -> PoolView:
    """Capacity changes are one UPDATE that also recomputes the overhang; never refused."""
    changes: dict[str, Any] = patch.model_dump(exclude_unset=True)
    for required in ("name", "overbook_ratio"):
        if required in changes and changes[required] is None:
            raise InvalidRequest(f"{required} cannot be null")
    now = rt.clock()
    async with rt.db.transaction() as tx:
        pool = await load_pool(tx, pool_id)
        require_manager(principal, await load_event(tx, pool.event_id))
        members = (await _members(tx, [pool.id])).get(pool.id, [])
        limits_change = "capacity" in changes or "overbook_ratio" in changes
        if limits_change:
            # Member ticket types first: the waitlist promotion below reserves through them,
            # and no ticket-type row may be locked after a pool row.
            await draws.lock_for_membership(tx, await draws.waitlisted_neighbours(tx, members))
            capacity = changes.get("capacity", pool.capacity)
            ratio = changes.get("overbook_ratio", pool.overbook_ratio)
            limit = rules.admission_limit(capacity, ratio)
            changes["admission_limit"] = limit
            changes["quantity_over"] = _over_for(limit)
        changes["updated_at"] = now
        await tx.execute(
            update(CapacityPool)
            .where(CapacityPool.id == pool.id)
            .values(**changes)
            .execution_options(synchronize_session=False)
        )
        if limits_change and members:
            await offers.settle(tx, members, now, rt.settings.offer_ttl)
        return await _view(tx, pool.id)


def _over_for(limit: int | None) -> Any:
    """The overhang under a new limit, computed in the same UPDATE from the current use."""
    if limit is None:
        return 0
    return draws.over_expr(CapacityPool.quantity_used, literal(limit))


async def attach_ticket_type(
    rt: Runtime, principal: Principal, pool_id: str, ticket_type_id: str
) -> PoolView:
    async with rt.db.transaction() as tx:
        pool = await load_pool(tx, pool_id)
        require_manager(principal, await load_event(tx, pool.event_id))
        tt = await load_ticket_type(tx, ticket_type_id)
        await _attach_checked(tx, tt.id, tt.event_id, pool)
        return await _view(tx, pool.id)


async def detach_ticket_type(
    rt: Runtime, principal: Principal, pool_id: str, ticket_type_id: str
) -> PoolView:
    """The pool's room grows by the type's use: the other members' waitlists get it."""
    now = rt.clock()
    async with rt.db.transaction() as tx:
        pool = await load_pool(tx, pool_id)
        require_manager(principal, await load_event(tx, pool.event_id))
        tt = await load_ticket_type(tx, ticket_type_id)
        members = (await _members(tx, [pool.id])).get(pool.id, [])
        await draws.lock_for_membership(
            tx, await draws.waitlisted_neighbours(tx, {*members, tt.id})
        )
        if await draws.detach(tx, tt.id, pool.id):
            await offers.settle(tx, members, now, rt.settings.offer_ttl)
        return await _view(tx, pool.id)


__all__ = [
    "PoolDraft",
    "PoolPatch",
    "attach_ticket_type",
    "create_pool",
    "detach_ticket_type",
    "get_pool",
    "list_pools",
    "pool_views",
    "set_pools",
    "update_pool",
]
