"""Ledger tables for event registrations, sessions, session seats and waitlists.

Each counter sits in a small row of its own (`event_capacity`, `session_capacity`) next to
the claim rows that explain it (`registrations`, `session_seats`, `waitlist_entries`), so
admissions contend on one narrow row and never on the descriptive `events`/`sessions` rows
that organizers edit. `reconcile` recomputes every counter from the claim rows.

Waitlist order is the `seq` column: assigned as max(seq)+1 *while the resource's counter
row is locked*, so the order of `seq` is the order in which joins were serialised, on any
number of processes. Unique (resource, seq) pairs are the last line of defence.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from headcount.ledger.models import (
    Base,
    CopiedEvent,
    EventRef,
    EventRow,
    RowId,
    key_to,
    non_negative,
)

LIVE_ENTRY = "status IN ('waiting', 'offered')"


class EventCapacity(Base):
    """How many people an event counts: registrations (with guests) and tickets.

    The cap itself stays on `events.max_attendees`, the one place organizers change it;
    both admission statements read it in the same UPDATE and check the two counters'
    sum against it.
    """

    __tablename__ = "event_capacity"

    event_id: Mapped[str] = key_to("events")
    registered: Mapped[int] = mapped_column(Integer, default=0)
    # Tickets held or sold, kept only while the event has a cap (ledger/draws.py).
    tickets: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    __table_args__ = (
        non_negative("registered"),
        non_negative("tickets"),
    )


class Registration(Base):
    """One row per (event, attendee): re-registering after a cancel reactivates it."""

    __tablename__ = "registrations"

    id: Mapped[RowId]
    event_id: Mapped[str] = mapped_column(ForeignKey("events.id"))
    attendee_id: Mapped[str] = mapped_column(String(200), index=True)
    party_size: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    cancelled_at: Mapped[datetime | None]

    __table_args__ = (
        UniqueConstraint("event_id", "attendee_id", name="uq_registrations_event_attendee"),
        CheckConstraint("party_size >= 1", name="party_size_positive"),
        CheckConstraint("status IN ('active', 'cancelled')", name="status"),
    )


class Session(EventRow, Base):
    """An agenda item of an event. Breakout rooms (presence) hang off `sessions.id`."""

    __tablename__ = "sessions"

    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    starts_at: Mapped[datetime | None]
    ends_at: Mapped[datetime | None]
    waitlist_enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class SessionCapacity(Base):
    """The hot row of a session: its limit and how many seats are confirmed."""

    __tablename__ = "session_capacity"

    session_id: Mapped[str] = key_to("sessions")
    event_id: Mapped[CopiedEvent]  # the session's
    maximum_capacity: Mapped[int] = mapped_column(Integer)
    current_attendance: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (
        non_negative("maximum_capacity", "maximum"),
        non_negative("current_attendance", "attendance"),
        CheckConstraint("current_attendance <= maximum_capacity", name="not_overbooked"),
    )


class SessionSeat(Base):
    """A confirmed place in a session (or one given up: status `left`)."""

    __tablename__ = "session_seats"

    session_id: Mapped[str] = key_to("sessions")
    attendee_id: Mapped[str] = mapped_column(String(200), primary_key=True, index=True)
    event_id: Mapped[CopiedEvent]  # the session's
    status: Mapped[str] = mapped_column(String(20))
    via: Mapped[str] = mapped_column(String(20))
    confirmed_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (
        CheckConstraint("status IN ('confirmed', 'left')", name="status"),
        CheckConstraint("via IN ('rsvp', 'waitlist')", name="via"),
        Index("ix_session_seats_session_id_status", "session_id", "status"),
    )


def _one_live_entry(resource: str) -> Index:
    """At most one live waitlist entry per attendee in the queue of one `resource` (a
    session or a ticket type): a partial unique index, on both backends."""
    live = text(f"{resource}_id IS NOT NULL AND {LIVE_ENTRY}")
    return Index(
        f"uq_waitlist_entries_live_{resource}",
        f"{resource}_id",
        "attendee_id",
        unique=True,
        postgresql_where=live,
        sqlite_where=live,
    )


class WaitlistEntry(Base):
    """A place in the queue of a session or a ticket type, and what became of it.

    `waiting` → `promoted` (session seat given) · `offered` (ticket stock held for
    `offered_quantity` until `offer_expires_at`) → `accepted` (an order took the hold over)
    · `declined` · `expired`; `left` when the attendee walks away while waiting.
    """

    __tablename__ = "waitlist_entries"

    id: Mapped[RowId]
    event_id: Mapped[EventRef]
    session_id: Mapped[str | None] = mapped_column(ForeignKey("sessions.id"))
    ticket_type_id: Mapped[str | None] = mapped_column(ForeignKey("ticket_types.id"))
    attendee_id: Mapped[str] = mapped_column(String(200), index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))
    offered_quantity: Mapped[int | None] = mapped_column(Integer)
    offer_expires_at: Mapped[datetime | None]
    order_id: Mapped[str | None] = mapped_column(ForeignKey("orders.id"))
    joined_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (
        CheckConstraint("(session_id IS NULL) <> (ticket_type_id IS NULL)", name="one_resource"),
        CheckConstraint("quantity >= 1", name="quantity_positive"),
        CheckConstraint("seq >= 1", name="seq_positive"),
        CheckConstraint(
            "status IN ('waiting', 'offered', 'promoted', 'accepted', 'declined', 'expired',"
            " 'left')",
            name="status",
        ),
        CheckConstraint(
            "(status = 'offered') = (offered_quantity IS NOT NULL AND offer_expires_at IS NOT NULL)"
            " OR status IN ('accepted', 'declined', 'expired')",
            name="offer_fields",
        ),
        CheckConstraint(
            "offered_quantity IS NULL OR (offered_quantity >= 1 AND offered_quantity <= quantity)",
            name="offered_quantity",
        ),
        UniqueConstraint("session_id", "seq", name="uq_waitlist_entries_session_seq"),
        UniqueConstraint("ticket_type_id", "seq", name="uq_waitlist_entries_ticket_type_seq"),
        # One live entry per attendee and resource (partial unique indexes).
        _one_live_entry("session"),
        _one_live_entry("ticket_type"),
        # The sweeper's query: due offers, oldest first.
        Index("ix_waitlist_entries_status_offer_expires_at", "status", "offer_expires_at"),
    )
