"""Events: the container every capacity belongs to, managed by its organizer."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from headcount.capacity.inputs import Patch, new_row
from headcount.capacity.views import EventView
from headcount.domain.changes import ChangeType
from headcount.domain.errors import Forbidden, InvalidRequest
from headcount.domain.identity import Principal
from headcount.domain.presence import MAX_GRACE_SECONDS
from headcount.ledger import draws, journal, listings, locks, offers, rows
from headcount.ledger.db import Tx, stock_freed
from headcount.ledger.models import Event
from headcount.runtime import Runtime

MAX_LIMIT = 10_000_000


class VirtualSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_concurrent_viewers: int | None = Field(strict=True, default=None, ge=0, le=MAX_LIMIT)
    stream_url: str | None = Field(default=None, max_length=2000)
    reconnect_grace_seconds: int | None = Field(
        strict=True,
        default=None,
        ge=0,
        le=MAX_GRACE_SECONDS,
        description="how long a viewer whose connection dropped keeps their place "
        "(default: HEADCOUNT_PRESENCE_GRACE)",
    )


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
        check_window(self.starts_at, self.ends_at)
        return self


class EventPatch(Patch):
    """Only the fields present are changed; `null` clears a nullable field."""

    NULLABLE: ClassVar[frozenset[str]] = frozenset(
        {"description", "starts_at", "ends_at", "max_attendees", "virtual_settings"}
    )
    CLEARED: ClassVar[dict[str, object]] = {"description": ""}

    name: str | None = Field(default=None, min_length=1, max_length=300)
    description: str | None = Field(default=None, max_length=10_000)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    max_attendees: int | None = Field(strict=True, default=None, ge=0, le=MAX_LIMIT)
    virtual_settings: VirtualSettings | None = None


def check_window(starts_at: datetime | None, ends_at: datetime | None) -> None:
    """Times carry an offset, and nothing ends before it starts (events and sessions)."""
    for value in (starts_at, ends_at):
        if value is not None and value.tzinfo is None:
            raise ValueError("times must carry a UTC offset (RFC 3339)")
    if starts_at and ends_at and ends_at < starts_at:
        raise ValueError("ends_at is before starts_at")


def check_patched_window(starts_at: datetime | None, ends_at: datetime | None) -> None:
    """The window a PATCH leaves behind (sent fields over stored ones), or 422."""
    try:
        check_window(starts_at, ends_at)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from exc


async def load_event(tx: Tx, event_id: str, *, lock: bool = False) -> Event:
    return await rows.find(tx, Event, event_id, noun="event", lock=lock)


async def managed_event(
    tx: Tx, principal: Principal, event_id: str, *, lock: bool = False
) -> Event:
    """The event, if `principal` may manage it: where every organizer's write and private
    read begins. Loaded first, so a missing event is a 404 before any 403."""
    event = await load_event(tx, event_id, lock=lock)
    require_manager(principal, event)
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
    settings = draft.virtual_settings.model_dump(exclude_none=True)
    event = new_row(
        Event, draft, now, event_id, "evt", organizer_id=principal.sub, virtual_settings=settings
    )
    async with rt.db.transaction() as tx:
        await rows.add(tx, event)
        if event.max_attendees is not None:
            # A capped event counts tickets from its first sale on (ledger/draws.py).
            await draws.recount_event_tickets(tx, event.id)
        journal.audit(
            tx, ChangeType.EVENT_CREATED, ("event", event), None, _definition(event), at=now
        )
    return EventView.of(event)


_DEFINED = ("name", "description", "starts_at", "ends_at", "max_attendees")


def _definition(event: Event) -> dict[str, object]:
    """What an organizer sets on an event, as the audit trail shows it."""
    settings = dict(event.virtual_settings or {})
    return {**{name: getattr(event, name) for name in _DEFINED}, "virtual_settings": settings}


async def get_event(rt: Runtime, event_id: str) -> EventView:
    async with rt.db.snapshot() as tx:
        return EventView.of(await load_event(tx, event_id))


async def list_events(
    rt: Runtime, *, organizer_id: str | None = None, limit: int = 100
) -> list[EventView]:
    async with rt.db.snapshot(may_lag=True) as tx:
        found = await listings.events(tx, organizer_id=organizer_id, limit=limit)
        return [EventView.of(e) for e in found]


async def update_event(
    rt: Runtime, principal: Principal, event_id: str, patch: EventPatch
) -> EventView:
    """Lowering a cap never evicts anyone: it only stops new admissions."""
    changes = patch.changes()
    if "virtual_settings" in changes:
        changes["virtual_settings"] = (patch.virtual_settings or VirtualSettings()).model_dump(
            exclude_none=True
        )

    async def work(tx: Tx) -> EventView:
        event = await managed_event(tx, principal, event_id, lock=True)
        check_patched_window(
            changes.get("starts_at", event.starts_at), changes.get("ends_at", event.ends_at)
        )
        before = _definition(event)
        cap_before = event.max_attendees
        for name, value in changes.items():
            setattr(event, name, value)
        event.updated_at = rt.clock()
        journal.stamp(tx, event.updated_at)
        if "max_attendees" in changes:
            await _move_cap(tx, event, cap_before)
        journal.audit(
            tx,
            ChangeType.EVENT_CHANGED,
            ("event", event),
            before,
            _definition(event),
            at=event.updated_at,
        )
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


async def _move_cap(tx: Tx, event: Event, cap_before: int | None) -> None:
    """A new `max_attendees` on the locked event row: keep the ticket counter, and record
    `event.full` / `event.reopened` if the new cap moved the event across its limit.

    The counter row is locked (step 7, after the event row) before it is read, so the
    count judged is one no admission can move before COMMIT; admissions judge their own
    crossings against the cap their statement reads, which is this one once we commit.
    """
    stock_freed(tx)  # a higher (or no) cap may open room to every type of the event
    counted = await locks.event_counter(tx, event.id)
    registered, tickets = counted or (0, 0)
    was_full = journal.full(registered + tickets, cap_before)
    if (cap_before is not None) != (event.max_attendees is not None):
        # The ticket counter is kept only while a cap is set: rebuild it when one appears,
        # zero it when it goes. The event row lock taken above makes buyers wait
        # (ledger/draws.py reads it FOR KEY SHARE), so no sale slips between.
        await rows.save(tx)
        tickets = await draws.recount_event_tickets(
            tx, event.id, keep=event.max_attendees is not None
        )
    journal.limit_moved(
        tx,
        journal.EVENT,
        event_id=event.id,
        resource=("event", event.id),
        was_full=was_full,
        figures={
            "max_attendees": event.max_attendees,
            "registered": registered,
            "tickets": tickets,
        },
        is_full=journal.full(registered + tickets, event.max_attendees),
    )


async def _settle_queues(rt: Runtime, tx: Tx, event_id: str) -> None:
    if queued := await draws.queued_ticket_types(tx, event_id):
        await offers.settle(tx, queued, rt.clock(), rt.settings.offer_ttl, event_id=event_id)
