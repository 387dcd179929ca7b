"""Registrations, sessions with seats and waitlists, ticket waitlists: types and operations.

Same service calls as `api/rest/{registrations,sessions,waitlists}.py`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, cast

import strawberry

from headcount.api.graphql import fields
from headcount.api.graphql.convert import flat
from headcount.api.graphql.convert import idempotency_key as checked_key
from headcount.api.graphql.refusals import (
    COMMON,
    Conflict,
    EventFull,
    Forbidden,
    IdempotencyKeyReused,
    InvalidQuantity,
    InvalidRequest,
    NotFound,
    NotRegistered,
    Refusal,
    Refused,
    SessionFull,
    Unauthorized,
    attempt,
)
from headcount.capacity import registrations, sessions, waitlists
from headcount.capacity.registrations import RegistrationDraft
from headcount.capacity.views import (
    RegistrationCapacity as RegistrationCapacityView,
)
from headcount.capacity.views import (
    RegistrationView,
    RsvpView,
    SessionView,
    WaitlistEntryView,
    WaitlistView,
)
from headcount.capacity.waitlists import TicketWaitlistDraft
from headcount.domain.attendance import EntryStatus, RegistrationStatus, RsvpStatus

strawberry.enum(RegistrationStatus, name="RegistrationStatus")
strawberry.enum(EntryStatus, name="WaitlistEntryStatus")
strawberry.enum(RsvpStatus, name="RsvpStatus")


@strawberry.type
class Registration:
    id: strawberry.ID
    event_id: strawberry.ID
    attendee_id: str
    party_size: int
    status: RegistrationStatus
    created_at: datetime
    updated_at: datetime
    cancelled_at: datetime | None

    @classmethod
    def of(cls, view: RegistrationView) -> Registration:
        return flat(cls, view)


@strawberry.type(description="`remaining` is null without a cap; never negative.")
class RegistrationCapacity:
    max_attendees: int | None
    registered: int
    remaining: int | None
    is_full: bool

    @classmethod
    def of(cls, view: RegistrationCapacityView) -> RegistrationCapacity:
        return flat(cls, view)


@strawberry.type
class Session:
    id: strawberry.ID
    event_id: strawberry.ID
    title: str
    description: str
    starts_at: datetime | None
    ends_at: datetime | None
    max_participants: int
    current_attendance: int
    remaining: int
    is_full: bool
    waitlist_enabled: bool
    waitlist_length: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, view: SessionView) -> Session:
        return flat(cls, view)


@strawberry.type(description="One place in a queue, and what became of it (`status`).")
class WaitlistEntry:
    id: strawberry.ID
    event_id: strawberry.ID
    session_id: strawberry.ID | None
    ticket_type_id: strawberry.ID | None
    attendee_id: str
    quantity: int
    seq: int
    status: EntryStatus
    position: int | None
    offered_quantity: int | None
    offer_expires_at: datetime | None
    order_id: strawberry.ID | None
    joined_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, view: WaitlistEntryView) -> WaitlistEntry:
        return flat(cls, view)


@strawberry.type(description="`CONFIRMED`, `WAITLISTED` (with `position`), or `NONE`.")
class Rsvp:
    session_id: strawberry.ID
    attendee_id: str
    status: RsvpStatus
    position: int | None
    waitlist_entry: WaitlistEntry | None

    @classmethod
    def of(cls, view: RsvpView) -> Rsvp:
        entry = view.waitlist_entry
        return flat(cls, view, waitlist_entry=WaitlistEntry.of(entry) if entry else None)


@strawberry.type(description="The organizer's listing: live entries in queue order.")
class Waitlist:
    session_id: strawberry.ID | None
    ticket_type_id: strawberry.ID | None
    waiting: int
    offered: int
    entries: list[WaitlistEntry]

    @classmethod
    def of(cls, view: WaitlistView) -> Waitlist:
        return flat(cls, view, entries=[WaitlistEntry.of(e) for e in view.entries])


@strawberry.type(description="`created` is false when you were already registered.")
class Registered:
    created: bool
    registration: Registration


@strawberry.type
class RegistrationList:
    registrations: list[Registration]


@strawberry.type
class WaitlistEntryList:
    entries: list[WaitlistEntry]


SessionResult = Annotated[
    Session | NotFound | Unauthorized | Forbidden | InvalidRequest | Refused,
    strawberry.union("SessionResult"),
]
RegistrationResult = Annotated[
    Registration | NotFound | Unauthorized | Forbidden | InvalidRequest | Refused,
    strawberry.union("RegistrationResult"),
]
RegistrationListResult = Annotated[
    RegistrationList | NotFound | Unauthorized | Forbidden | InvalidRequest | Refused,
    strawberry.union("RegistrationListResult"),
]
RsvpResult = Annotated[
    Rsvp
    | SessionFull
    | NotRegistered
    | IdempotencyKeyReused
    | Conflict
    | NotFound
    | Unauthorized
    | Forbidden
    | InvalidRequest
    | Refused,
    strawberry.union("RsvpResult"),
]
WaitlistResult = Annotated[
    Waitlist | NotFound | Unauthorized | Forbidden | InvalidRequest | Refused,
    strawberry.union("WaitlistResult"),
]
WaitlistEntryResult = Annotated[
    WaitlistEntry
    | InvalidQuantity
    | IdempotencyKeyReused
    | Conflict
    | NotFound
    | Unauthorized
    | Forbidden
    | InvalidRequest
    | Refused,
    strawberry.union("WaitlistEntryResult"),
]
WaitlistEntryListResult = Annotated[
    WaitlistEntryList | NotFound | Unauthorized | Forbidden | InvalidRequest | Refused,
    strawberry.union("WaitlistEntryListResult"),
]
RegisterResult = Annotated[
    Registered
    | EventFull
    | InvalidQuantity
    | IdempotencyKeyReused
    | Conflict
    | NotFound
    | Unauthorized
    | Forbidden
    | InvalidRequest
    | Refused,
    strawberry.union("RegisterResult"),
]
CancelRegistrationResult = Annotated[
    Registration
    | IdempotencyKeyReused
    | Conflict
    | NotFound
    | Unauthorized
    | Forbidden
    | InvalidRequest
    | Refused,
    strawberry.union("CancelRegistrationResult"),
]

ATTENDANCE_REFUSALS: tuple[type[Refusal], ...] = (
    *COMMON,
    EventFull,
    SessionFull,
    NotRegistered,
    InvalidQuantity,
    IdempotencyKeyReused,
    Conflict,
)


@strawberry.type
class AttendanceQuery:
    @strawberry.field
    async def session(self, info: strawberry.Info, id: strawberry.ID) -> SessionResult:
        async def work() -> Session:
            return Session.of(await sessions.get_session(info.context.runtime, id))

        return cast(SessionResult, await attempt(work, COMMON))

    @fields.field("The caller's registration for the event (also when cancelled).")
    async def my_registration(
        self, info: strawberry.Info, event_id: strawberry.ID
    ) -> RegistrationResult:
        async def work() -> Registration:
            who = info.context.principal()
            view = await registrations.my_registration(info.context.runtime, who, event_id)
            return Registration.of(view)

        return cast(RegistrationResult, await attempt(work, COMMON))

    @fields.field("Every registration of the event (its organizer only).")
    async def registrations(
        self, info: strawberry.Info, event_id: strawberry.ID
    ) -> RegistrationListResult:
        async def work() -> RegistrationList:
            who = info.context.principal()
            views = await registrations.list_registrations(info.context.runtime, who, event_id)
            return RegistrationList(registrations=[Registration.of(v) for v in views])

        return cast(RegistrationListResult, await attempt(work, COMMON))

    @fields.field("The caller's seat or waitlist place in a session.")
    async def my_rsvp(self, info: strawberry.Info, session_id: strawberry.ID) -> RsvpResult:
        async def work() -> Rsvp:
            who = info.context.principal()
            return Rsvp.of(await sessions.my_rsvp(info.context.runtime, who, session_id))

        return cast(RsvpResult, await attempt(work, ATTENDANCE_REFUSALS))

    @fields.field("A session's waitlist in queue order (the event's organizer only).")
    async def session_waitlist(
        self, info: strawberry.Info, session_id: strawberry.ID
    ) -> WaitlistResult:
        async def work() -> Waitlist:
            who = info.context.principal()
            view = await sessions.session_waitlist(info.context.runtime, who, session_id)
            return Waitlist.of(view)

        return cast(WaitlistResult, await attempt(work, COMMON))

    @fields.field("A ticket type's waitlist in queue order (the event's organizer only).")
    async def ticket_waitlist(
        self, info: strawberry.Info, ticket_type_id: strawberry.ID
    ) -> WaitlistResult:
        async def work() -> Waitlist:
            who = info.context.principal()
            view = await waitlists.ticket_waitlist(info.context.runtime, who, ticket_type_id)
            return Waitlist.of(view)

        return cast(WaitlistResult, await attempt(work, COMMON))

    @fields.field("Every queue the caller joined in this event, newest first.")
    async def my_waitlist_entries(
        self, info: strawberry.Info, event_id: strawberry.ID
    ) -> WaitlistEntryListResult:
        async def work() -> WaitlistEntryList:
            who = info.context.principal()
            views = await waitlists.my_entries(info.context.runtime, who, event_id)
            return WaitlistEntryList(entries=[WaitlistEntry.of(v) for v in views])

        return cast(WaitlistEntryListResult, await attempt(work, COMMON))


@strawberry.type
class AttendanceMutation:
    @fields.mutation("Register (with guests) for the event; `EventFull` when no room is left.")
    async def register_for_event(
        self,
        info: strawberry.Info,
        event_id: strawberry.ID,
        party_size: int = 1,
        idempotency_key: str | None = None,
    ) -> RegisterResult:
        async def work() -> Registered:
            who = info.context.principal()
            draft = RegistrationDraft.model_validate({"party_size": party_size})
            view, created = await registrations.register(
                info.context.runtime,
                who,
                event_id,
                draft,
                idempotency_key=checked_key(idempotency_key),
            )
            return Registered(created=created, registration=Registration.of(view))

        return cast(RegisterResult, await attempt(work, ATTENDANCE_REFUSALS))

    @fields.mutation("Cancel: also gives up your session seats and session waitlist places.")
    async def cancel_registration(
        self, info: strawberry.Info, event_id: strawberry.ID, idempotency_key: str | None = None
    ) -> CancelRegistrationResult:
        async def work() -> Registration:
            who = info.context.principal()
            view = await registrations.cancel_registration(
                info.context.runtime, who, event_id, idempotency_key=checked_key(idempotency_key)
            )
            return Registration.of(view)

        return cast(CancelRegistrationResult, await attempt(work, ATTENDANCE_REFUSALS))

    @fields.mutation("Take a seat, or a waitlist place with a position; `SessionFull` if neither.")
    async def rsvp_session(
        self, info: strawberry.Info, session_id: strawberry.ID, idempotency_key: str | None = None
    ) -> RsvpResult:
        async def work() -> Rsvp:
            who = info.context.principal()
            view = await sessions.rsvp(
                info.context.runtime, who, session_id, idempotency_key=checked_key(idempotency_key)
            )
            return Rsvp.of(view)

        return cast(RsvpResult, await attempt(work, ATTENDANCE_REFUSALS))

    @fields.mutation("Give up your seat (the waitlist's head gets it) or your waitlist place.")
    async def leave_session(
        self, info: strawberry.Info, session_id: strawberry.ID, idempotency_key: str | None = None
    ) -> RsvpResult:
        async def work() -> Rsvp:
            who = info.context.principal()
            view = await sessions.leave(
                info.context.runtime, who, session_id, idempotency_key=checked_key(idempotency_key)
            )
            return Rsvp.of(view)

        return cast(RsvpResult, await attempt(work, ATTENDANCE_REFUSALS))

    @fields.mutation("Queue for a sold-out ticket type; accept an offer by ordering it.")
    async def join_ticket_waitlist(
        self,
        info: strawberry.Info,
        ticket_type_id: strawberry.ID,
        quantity: int = 1,
        idempotency_key: str | None = None,
    ) -> WaitlistEntryResult:
        async def work() -> WaitlistEntry:
            who = info.context.principal()
            draft = TicketWaitlistDraft.model_validate({"quantity": quantity})
            view = await waitlists.join_ticket_waitlist(
                info.context.runtime,
                who,
                ticket_type_id,
                draft,
                idempotency_key=checked_key(idempotency_key),
            )
            return WaitlistEntry.of(view)

        return cast(WaitlistEntryResult, await attempt(work, ATTENDANCE_REFUSALS))

    @fields.mutation("Leave a ticket type's waitlist, or decline its offer (next person gets it).")
    async def leave_ticket_waitlist(
        self,
        info: strawberry.Info,
        ticket_type_id: strawberry.ID,
        idempotency_key: str | None = None,
    ) -> WaitlistEntryResult:
        async def work() -> WaitlistEntry:
            who = info.context.principal()
            view = await waitlists.leave_ticket_waitlist(
                info.context.runtime,
                who,
                ticket_type_id,
                idempotency_key=checked_key(idempotency_key),
            )
            return WaitlistEntry.of(view)

        return cast(WaitlistEntryResult, await attempt(work, ATTENDANCE_REFUSALS))
