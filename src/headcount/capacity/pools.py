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

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from headcount.capacity.decisions import under_event, under_row
from headcount.capacity.events import load_event
from headcount.capacity.inputs import Patch, new_row
from headcount.capacity.pool_membership import load_pool, set_pools
from headcount.capacity.tickets import load_ticket_type
from headcount.capacity.views import EventTotalView, PoolView
from headcount.domain import pools as rules
from headcount.domain.changes import ChangeType
from headcount.domain.errors import InvalidRequest
from headcount.domain.identity import Principal
from headcount.domain.tickets import MAX_QUANTITY
from headcount.ledger import (
    allotments,
    draws,
    journal,
    listings,
    locks,
    offers,
    registrations,
    rows,
)
from headcount.ledger.db import Tx
from headcount.ledger.models import Event, TicketType
from headcount.ledger.pools import CapacityPool
from headcount.runtime import Runtime


class PoolDraft(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=300)
    capacity: int | None = Field(strict=True, default=None, ge=0, le=MAX_QUANTITY)
    overbook_ratio: float = Field(default=0.0, ge=0, le=rules.MAX_OVERBOOK_RATIO)
    max_per_customer: int | None = Field(strict=True, default=None, ge=1, le=MAX_QUANTITY)
    ticket_type_ids: list[str] = Field(default_factory=list, max_length=100)


class PoolPatch(Patch):
    """Only the fields present change; `null` capacity makes the pool unlimited."""

    NULLABLE: ClassVar[frozenset[str]] = frozenset({"capacity", "max_per_customer"})

    name: str | None = Field(default=None, min_length=1, max_length=300)
    capacity: int | None = Field(strict=True, default=None, ge=0, le=MAX_QUANTITY)
    overbook_ratio: float | None = Field(default=None, ge=0, le=rules.MAX_OVERBOOK_RATIO)
    max_per_customer: int | None = Field(strict=True, default=None, ge=1, le=MAX_QUANTITY)


def pool_view(pool: CapacityPool, ticket_type_ids: Sequence[str], held: int) -> PoolView:
    left = rules.remaining(pool.quantity_used, pool.admission_limit)
    return PoolView.from_row(
        pool,
        quantity_available=left,
        over_capacity_by=rules.over_by(pool.quantity_used, pool.admission_limit),
        is_exhausted=left == 0,
        ticket_type_ids=sorted(ticket_type_ids),
        held_by_organizer=held,
    )


async def pool_views(tx: Tx, event_id: str) -> list[PoolView]:
    found = await listings.pools(tx, event_id)
    ids = [p.id for p in found]
    members = await draws.members(tx, ids)
    held = await allotments.held_in_pools(tx, ids) if ids else {}
    return [pool_view(p, members.get(p.id, []), held.get(p.id, 0)) for p in found]


async def event_total_view(tx: Tx, event: Event) -> EventTotalView:
    """The event-wide cap over people: registrations plus tickets held or sold."""
    registered, tickets = await registrations.people(tx, event.id)
    people = registered + tickets
    return EventTotalView(
        max_attendees=event.max_attendees,
        registered=registered,
        tickets=tickets,
        remaining=rules.remaining(people, event.max_attendees),
        over_capacity_by=rules.over_by(people, event.max_attendees),
    )


async def _members(tx: Tx, pool_id: str) -> list[str]:
    return (await draws.members(tx, [pool_id])).get(pool_id, [])


async def _held(tx: Tx, pool_id: str) -> int:
    return (await allotments.held_in_pools(tx, [pool_id])).get(pool_id, 0)


async def _view(tx: Tx, pool_id: str) -> PoolView:
    pool = await load_pool(tx, pool_id)
    return pool_view(pool, await _members(tx, pool.id), await _held(tx, pool.id))


async def create_pool(
    rt: Runtime,
    principal: Principal,
    event_id: str,
    draft: PoolDraft,
    *,
    pool_id: str | None = None,
) -> PoolView:
    async with under_event(rt, principal, event_id) as (tx, event, now):
        admission_limit = rules.admission_limit(draft.capacity, draft.overbook_ratio)
        pool = new_row(
            CapacityPool,
            draft,
            now,
            pool_id,
            "pool",
            event_id=event.id,
            admission_limit=admission_limit,
            quantity_used=0,
            quantity_over=0,
        )
        await rows.add(tx, pool)
        chosen = [await load_ticket_type(tx, t) for t in sorted(set(draft.ticket_type_ids))]
        # Every ticket-type row before the pool row the first attach moves.
        await locks.ticket_types(tx, [tt.id for tt in chosen], event_id=pool.event_id)
        for tt in chosen:
            await _attach_checked(tx, tt.id, tt.event_id, pool)
        view = await _view(tx, pool.id)
        _audit(tx, ChangeType.POOL_CREATED, None, view, now)
        return view


def _definition(view: PoolView) -> dict[str, object]:
    """What an organizer sets on a pool (its draft, and the admission limit that follows),
    as the audit trail shows it."""
    return view.model_dump(include={*PoolDraft.model_fields, "admission_limit"})


def _audit(
    tx: Tx, type_: ChangeType, before: PoolView | None, after: PoolView, now: datetime
) -> None:
    journal.audit(
        tx,
        type_,
        ("pool", after),
        None if before is None else _definition(before),
        _definition(after),
        at=now,
    )


async def _attach_checked(
    tx: Tx, ticket_type_id: str, tt_event_id: str, pool: CapacityPool
) -> None:
    if tt_event_id != pool.event_id:
        raise InvalidRequest(
            f"ticket type {ticket_type_id} belongs to another event than pool {pool.id}",
            ticket_type_id=ticket_type_id,
            pool_id=pool.id,
        )
    await locks.ticket_types(tx, [ticket_type_id], event_id=pool.event_id)
    await draws.attach(tx, ticket_type_id, pool.id, event_id=pool.event_id)


async def list_pools(rt: Runtime, event_id: str) -> list[PoolView]:
    async with rt.db.snapshot(may_lag=True) as tx:
        event = await load_event(tx, event_id)
        return await pool_views(tx, event.id)


async def get_pool(rt: Runtime, pool_id: str) -> PoolView:
    async with rt.db.snapshot() as tx:
        return await _view(tx, pool_id)


async def update_pool(
    rt: Runtime, principal: Principal, pool_id: str, patch: PoolPatch
) -> PoolView:
    """Capacity changes are one UPDATE that also recomputes the overhang; never refused."""
    changes = patch.changes()
    async with under_row(rt, principal, load_pool, pool_id) as (tx, pool, now):
        members = await _members(tx, pool.id)
        before = pool_view(pool, members, await _held(tx, pool.id))
        limits_change = "capacity" in changes or "overbook_ratio" in changes
        if limits_change:
            # Member ticket types first: the waitlist promotion below reserves through them,
            # and no ticket-type row may be locked after a pool row.
            queued = await draws.waitlisted_neighbours(tx, members, event_id=pool.event_id)
            await locks.ticket_types(tx, queued, event_id=pool.event_id)
            capacity = changes.get("capacity", pool.capacity)
            ratio = changes.get("overbook_ratio", pool.overbook_ratio)
            changes["admission_limit"] = rules.admission_limit(capacity, ratio)
        await draws.change_pool(tx, pool.id, {**changes, "updated_at": now}, event_id=pool.event_id)
        if limits_change and members:
            await offers.settle(tx, members, now, rt.settings.offer_ttl, event_id=pool.event_id)
        view = await _view(tx, pool.id)
        _audit(tx, ChangeType.POOL_CHANGED, before, view, now)
        return view


async def attach_ticket_type(
    rt: Runtime, principal: Principal, pool_id: str, ticket_type_id: str
) -> PoolView:
    return await _membership_change(
        rt,
        principal,
        pool_id,
        ticket_type_id,
        lambda tx, pool, tt, _members, _now: _attach_checked(tx, tt.id, tt.event_id, pool),
    )


async def detach_ticket_type(
    rt: Runtime, principal: Principal, pool_id: str, ticket_type_id: str
) -> PoolView:
    """The pool's room grows by the type's use: the other members' waitlists get it."""

    async def detach(
        tx: Tx, pool: CapacityPool, tt: TicketType, members: list[str], now: datetime
    ) -> None:
        event_id = pool.event_id
        queued = await draws.waitlisted_neighbours(tx, {*members, tt.id}, event_id=event_id)
        await locks.ticket_types(tx, queued, event_id=event_id)
        if await draws.detach(tx, tt.id, pool.id, event_id=event_id):
            await offers.settle(tx, members, now, rt.settings.offer_ttl, event_id=event_id)

    return await _membership_change(rt, principal, pool_id, ticket_type_id, detach)


async def _membership_change(
    rt: Runtime,
    principal: Principal,
    pool_id: str,
    ticket_type_id: str,
    move: Callable[[Tx, CapacityPool, TicketType, list[str], datetime], Awaitable[None]],
) -> PoolView:
    """A ticket type attached to or detached from a pool by its organizer: `move` gets the
    pool, the type, the members before and the moment; the audit row shows the pool
    before and after."""
    async with under_row(rt, principal, load_pool, pool_id) as (tx, pool, now):
        tt = await load_ticket_type(tx, ticket_type_id)
        members = await _members(tx, pool.id)
        before = pool_view(pool, members, await _held(tx, pool.id))
        await move(tx, pool, tt, members, now)
        view = await _view(tx, pool.id)
        _audit(tx, ChangeType.POOL_CHANGED, before, view, now)
        return view


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
