"""Capacity pools: one quota shared by several ticket types ("200 seats in the hall").

A pool's counter `quantity_used` is the held plus sold stock (waitlist offers included) of
every ticket type attached to it, changed only by `ledger/draws.py` in the same statement
batch as the ticket types' own counters, so `reconcile` can prove it from the order rows.

`admission_limit` is stored, not computed on read: floor(capacity * (1 + overbook_ratio)),
or NULL for an unlimited pool. Storing it keeps the deciding UPDATE a plain comparison on
one row and gives the CHECK constraint something to hold on to. `quantity_over` is the
overhang left when an organizer lowers a limit below what is already in use (nobody is
cancelled); the CHECK `used <= limit + over` stays a real last line of defence.
"""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Float, Integer
from sqlalchemy.orm import Mapped, mapped_column

from headcount.ledger.models import Base, CopiedEvent, EventRow, Name, key_to, non_negative


class CapacityPool(EventRow, Base):
    __tablename__ = "capacity_pools"

    name: Mapped[Name]
    capacity: Mapped[int | None] = mapped_column(Integer)
    overbook_ratio: Mapped[float] = mapped_column(Float, default=0.0)
    admission_limit: Mapped[int | None] = mapped_column(Integer)
    max_per_customer: Mapped[int | None] = mapped_column(Integer)
    quantity_used: Mapped[int] = mapped_column(Integer, default=0)
    quantity_over: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (
        CheckConstraint("capacity IS NULL OR capacity >= 0", name="capacity_non_negative"),
        non_negative("overbook_ratio", "overbook"),
        CheckConstraint(
            "(capacity IS NULL) = (admission_limit IS NULL)", name="limit_iff_capacity"
        ),
        CheckConstraint(
            "admission_limit IS NULL OR admission_limit >= capacity", name="limit_covers_capacity"
        ),
        CheckConstraint(
            "max_per_customer IS NULL OR max_per_customer >= 1", name="max_per_customer"
        ),
        non_negative("quantity_used", "used"),
        non_negative("quantity_over", "over"),
        CheckConstraint(
            "admission_limit IS NULL OR quantity_used <= admission_limit + quantity_over",
            name="not_overdrawn",
        ),
    )


class TicketTypePool(Base):
    """Membership: a ticket type draws on every pool it is attached to."""

    __tablename__ = "ticket_type_pools"

    ticket_type_id: Mapped[str] = key_to("ticket_types")
    pool_id: Mapped[str] = key_to("capacity_pools", index=True)
    event_id: Mapped[CopiedEvent]  # the pool's, which is its types' too
