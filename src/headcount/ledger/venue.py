"""Ledger tables of the door: areas, who is where, every scan, tickets given back.

`areas.inside` is a counter beside the rows that explain it: the `area_positions` whose
area is it or one below it. Both change in the scan's transaction, under the area rows'
locks; `reconcile` recomputes positions by folding `scans` (domain/occupancy.py) and the
counters from those positions. `scans` is keyed by (event, scan_id), so a scanner's
retry, or a batch uploaded twice, is recognised and applied once.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from headcount.ledger.models import Base, CopiedEvent, EventRow, Name, key_to, non_negative


class Area(EventRow, Base):
    """A place with a door: the venue, a hall in it, a room in the hall."""

    __tablename__ = "areas"

    parent_id: Mapped[str | None] = mapped_column(ForeignKey("areas.id"))
    name: Mapped[Name]
    max_occupancy: Mapped[int | None] = mapped_column(Integer)
    # An entry without an exit is let through (and still counts once) instead of refused.
    allow_reentry: Mapped[bool] = mapped_column(default=False)
    inside: Mapped[int] = mapped_column(Integer, default=0)
    # When everyone still inside is checked out (once; the organizer sets the next one).
    checkout_at: Mapped[datetime | None] = mapped_column(index=True)

    __table_args__ = (
        non_negative("inside"),
        CheckConstraint("max_occupancy IS NULL OR max_occupancy >= 0", name="max_occupancy"),
    )


class AreaPosition(Base):
    """Where a credential is now: the innermost area it is in (absent: outside)."""

    __tablename__ = "area_positions"

    event_id: Mapped[str] = key_to("events")
    credential: Mapped[str] = mapped_column(String(300), primary_key=True)
    area_id: Mapped[str] = mapped_column(ForeignKey("areas.id"), index=True)
    since: Mapped[datetime]


class Scan(Base):
    """A stored scan: what the gate saw, when, and what it did (`outcome`).

    Refused online scans (full, already inside, bad credential) are not stored: a refused
    request changes nothing. `seq` orders scans of one credential with equal times.
    """

    __tablename__ = "scans"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("events.id"))
    scan_id: Mapped[str] = mapped_column(String(100))
    area_id: Mapped[str] = mapped_column(ForeignKey("areas.id"))
    credential: Mapped[str] = mapped_column(String(300))
    direction: Mapped[str] = mapped_column(String(10))
    source: Mapped[str] = mapped_column(String(20))
    outcome: Mapped[str] = mapped_column(String(20))
    scanned_at: Mapped[datetime]
    recorded_at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint("event_id", "scan_id", name="uq_scans_event_scan"),
        Index("ix_scans_event_id_credential", "event_id", "credential"),
        CheckConstraint("direction IN ('entry', 'exit')", name="direction"),
        CheckConstraint("source IN ('online', 'offline', 'correction')", name="source"),
        CheckConstraint(
            "outcome IN ('accepted', 'already_inside', 'not_inside', 'flagged')", name="outcome"
        ),
    )


class TicketRelease(Base):
    """A ticket unit given back to sale when its holder left (`release_after_exit`).

    The order line shrank by one in the same transaction; this row keeps the unit's
    number, so the line's other units keep theirs and this one is refused at the door.
    """

    __tablename__ = "ticket_releases"

    order_id: Mapped[str] = key_to("orders")
    ticket_type_id: Mapped[str] = key_to("ticket_types")
    unit: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[CopiedEvent]  # the order's
    released_at: Mapped[datetime]
