"""Events: the container every capacity belongs to, managed by its organizer."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from headcount.capacity.views import EventView
from headcount.domain.errors import Forbidden, InvalidRequest, NotFound
from headcount.domain.identity import Principal
from headcount.domain.ids import is_well_formed, new_id
from headcount.ledger import draws, offers
from headcount.ledger.models import Event
from headcount.runtime import Runtime

MAX_LIMIT = 10_000_000


class VirtualSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_concurrent_viewers: int | None = Field(strict=True, default=None, ge=0, le=MAX_LIMIT)
    stream_url: str | None = Field(default=None, max_length=2000)


class EventDraft(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=300)
    description: str = Field(default="", max_length=10_000)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    max_attendees: int | None = Field(strict=True, default=None, ge=0, le=MAX_LIMIT)
    virtual_settings: VirtualSettings = Field(default_factory=VirtualSettings)

    @model_validator(mode="after")
    def _window(self) -> EventDraft:
        _check_window(self.starts_at, self.ends_at)
        return self


class EventPatch(BaseModel):
    """Only the fields present are changed; `null` clears a nullable field."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=300)
    description: str | None = Field(default=None, max_length=10_000)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    max_attendees: int | None = Field(strict=True, default=None, ge=0, le=MAX_LIMIT)
    virtual_settings: VirtualSettings | None = None


def _check_window(starts_at: datetime | None, ends_at: datetime | None) -> None:
    for value in (starts_at, ends_at):
        if value is not None and value.tzinfo is None:
            raise ValueError("times must carry a UTC offset (RFC 3339)")
    if starts_at and ends_at and ends_at < starts_at:
        raise ValueError("ends_at is before starts_at")


async def load_event(tx: AsyncSession, event_id: str, *, lock: bool = False) -> Event:
    if not is_well_formed(event_id):
        raise NotFound(f"no event {event_id!r}")
    query = select(Event).where(Event.id == event_id)
    if lock:
        query = query.with_for_update()
    event = (await tx.scalars(query)).first()
    if event is None:
        raise NotFound(f"no event {event_id!r}")
    return event


def require_manager(principal: Principal, event: Event) -> None:
    if not principal.manages(event.organizer_id):
        raise Forbidden("only the event's organizer may do this")


async def create_event(
    rt: Runtime, principal: Principal, draft: EventDraft, *, event_id: str | None = None
) -> EventView:
    if not (principal.is_organizer or principal.is_service):
        raise Forbidden("only organizers create events")
    now = rt.clock()
    event = Event(
        id=event_id or new_id("evt"),
        organizer_id=principal.sub,
        name=draft.name,
        description=draft.description,
        starts_at=draft.starts_at,
        ends_at=draft.ends_at,
        max_attendees=draft.max_attendees,
        virtual_settings=draft.virtual_settings.model_dump(exclude_none=True),
        created_at=now,
        updated_at=now,
    )
    async with rt.db.transaction() as tx:
        tx.add(event)
        if event.max_attendees is not None:
            await tx.flush()
            # A capped event counts tickets from its first sale on (ledger/draws.py).
            await draws.recount_event_tickets(tx, event.id)
    return EventView.of(event)


async def get_event(rt: Runtime, event_id: str) -> EventView:
    async with rt.db.transaction() as tx:
        return EventView.of(await load_event(tx, event_id))


async def list_events(
    rt: Runtime, *, organizer_id: str | None = None, limit: int = 100
) -> list[EventView]:
    query = select(Event).order_by(Event.created_at.desc()).limit(limit)
    if organizer_id is not None:
        query = query.where(Event.organizer_id == organizer_id)
    async with rt.db.transaction() as tx:
        return [EventView.of(e) for e in (await tx.scalars(query)).all()]


async def update_event(
    rt: Runtime, principal: Principal, event_id: str, patch: EventPatch
) -> EventView:
    """Lowering a cap never evicts anyone: it only stops new admissions."""
    changes: dict[str, Any] = patch.model_dump(exclude_unset=True)
    if "name" in changes and changes["name"] is None:
        raise InvalidRequest("name cannot be null")

    async def work(tx: AsyncSession) -> EventView:
        event = await load_event(tx, event_id, lock=True)
        require_manager(principal, event)
        starts = changes.get("starts_at", event.starts_at)
        ends = changes.get("ends_at", event.ends_at)
        try:
            _check_window(starts, ends)
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from exc
        if "virtual_settings" in changes:
            vs = patch.virtual_settings or VirtualSettings()
            changes["virtual_settings"] = vs.model_dump(exclude_none=True)
        if "description" in changes and changes["description"] is None:
            changes["description"] = ""
        capped_before = event.max_attendees is not None
        for name, value in changes.items():
            setattr(event, name, value)
        event.updated_at = rt.clock()
        if "max_attendees" in changes and capped_before != (event.max_attendees is not None):
            # The ticket counter is kept only while a cap is set: rebuild it when one appears,
            # zero it when it goes. The event row lock taken above makes buyers wait
            # (ledger/draws.py reads it FOR KEY SHARE), so no sale slips between.
            await tx.flush()
            capped = event.max_attendees is not None
            await draws.recount_event_tickets(tx, event.id, keep=capped)
        return EventView.of(event)

    # Retried whole on deadlock: this is the one path that takes the event row FOR UPDATE
    # and may then touch `event_capacity`, which registrations lock before the event row.
    view = await rt.db.atomically(work)
    if "max_attendees" in changes:
        # A higher (or no) cap may open places to ticket queues. Settled in a transaction
        # of its own: promotion locks ticket types, which must not wait while this one
        # holds the event row FOR UPDATE (buyers hold it FOR KEY SHARE, then ticket types).
        await rt.db.atomically(lambda tx: _settle_queues(rt, tx, view.id))
    return view


async def _settle_queues(rt: Runtime, tx: AsyncSession, event_id: str) -> None:
    if queued := await draws.queued_ticket_types(tx, event_id):
        await offers.settle(tx, queued, rt.clock(), rt.settings.offer_ttl)
