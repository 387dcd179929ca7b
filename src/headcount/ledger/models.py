"""Ledger tables for events, ticket inventory, orders and idempotency records.

Counters (`quantity_sold`, `quantity_reserved`) live beside the rows that explain them
(order items of paid and pending orders) and change in the same transaction; the CHECK
constraints are the last line of defence if any code path ever forgets the rule.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    false,
)
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    MappedColumn,
    declared_attr,
    mapped_column,
    relationship,
)

from headcount.ledger.types import UTCDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# Columns many tables declare alike, defined once: `id: Mapped[RowId]` and so on.
RowId = Annotated[str, mapped_column(String(80), primary_key=True)]
EventRef = Annotated[str, mapped_column(ForeignKey("events.id"), index=True)]
# A child row's event, copied from its parent so the row can live on its event's shard
# (docs/scale-out.md); the declaring line names the parent.
CopiedEvent = Annotated[str, mapped_column(String(80))]
Name = Annotated[str, mapped_column(String(300))]


def key_to(table: str, *, index: bool = False) -> MappedColumn[Any]:
    """A column of a composite primary key that is also the id of a row of `table`: how a
    counter row, a membership or a line hangs off its parent (`index`: for lookups from
    the parent's side when the column is not the key's first)."""
    return mapped_column(ForeignKey(f"{table}.id"), primary_key=True, index=index)


def non_negative(column: str, short: str | None = None) -> CheckConstraint:
    """`column >= 0`, named `<short>_non_negative` as the migrations name it (`short` is the
    column itself unless they shortened it). The conditional statements keep every counter
    at zero or above; this is the database's own refusal should one ever not."""
    return CheckConstraint(f"{column} >= 0", name=f"{short or column}_non_negative")


class EventRow:
    """The columns every table of an event's own things has: its id, its event (indexed),
    when it was created and last changed; the generic statements of ledger/spaces.py rely
    on them. `sort_order` puts id and event first, as the migrations have them."""

    id: Mapped[RowId] = mapped_column(sort_order=-2)
    event_id: Mapped[EventRef] = mapped_column(sort_order=-1)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON()}

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        """A row's `event_id` rides in the WHERE clause of every UPDATE and DELETE the
        unit of work writes for it, as in the statements the ledger spells out, so a
        ledger distributed by event routes them to one shard (docs/scale-out.md).

        SQLAlchemy's version column does exactly that; with no generator it never changes
        the value, and a row's event never changes, so the "version check" only names it.
        """
        table = cls.__dict__.get("__table__")
        if table is None or "event_id" not in table.c:
            return {}
        return {"version_id_col": table.c.event_id, "version_id_generator": False}


class Event(Base):
    __tablename__ = "events"

    id: Mapped[RowId]
    organizer_id: Mapped[str] = mapped_column(String(200), index=True)
    name: Mapped[Name]
    description: Mapped[str] = mapped_column(Text, default="")
    starts_at: Mapped[datetime | None]
    ends_at: Mapped[datetime | None]
    max_attendees: Mapped[int | None] = mapped_column(Integer)
    virtual_settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    ticket_types: Mapped[list[TicketType]] = relationship(
        back_populates="event", order_by="TicketType.created_at"
    )

    __table_args__ = (
        CheckConstraint("max_attendees IS NULL OR max_attendees >= 0", name="max_attendees"),
    )


class TicketType(EventRow, Base):
    __tablename__ = "ticket_types"

    name: Mapped[Name]
    quantity_total: Mapped[int] = mapped_column(Integer)
    quantity_sold: Mapped[int] = mapped_column(Integer, default=0)
    quantity_reserved: Mapped[int] = mapped_column(Integer, default=0)
    max_per_order: Mapped[int | None] = mapped_column(Integer)
    # Buyer limits, and the overhang left when a total is lowered below use.
    min_per_order: Mapped[int | None] = mapped_column(Integer)
    max_per_customer: Mapped[int | None] = mapped_column(Integer)
    quantity_over: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Hot-inventory mode (ledger/buckets.py): > 1 keeps the free stock in that many bucket
    # rows, and this row's sold/reserved counters stay 0 (the order rows explain them).
    stock_buckets: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # Bumped by every pool attach/detach (ledger/draws.py): an order whose stock UPDATE
    # returns the value it read before locking knows its pools did not change meanwhile.
    membership_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    sales_start: Mapped[datetime | None]
    sales_end: Mapped[datetime | None]
    # A holder leaving the venue gives the unit back to sale (docs/venue.md).
    release_after_exit: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    event: Mapped[Event] = relationship(back_populates="ticket_types")

    __table_args__ = (
        non_negative("quantity_total", "total"),
        non_negative("quantity_sold", "sold"),
        non_negative("quantity_reserved", "reserved"),
        CheckConstraint(
            "quantity_sold + quantity_reserved <= quantity_total + quantity_over",
            name="not_oversold",
        ),
        non_negative("quantity_over", "over"),
        CheckConstraint("stock_buckets BETWEEN 1 AND 64", name="stock_buckets"),
        CheckConstraint("max_per_order IS NULL OR max_per_order >= 1", name="max_per_order"),
        CheckConstraint("min_per_order IS NULL OR min_per_order >= 1", name="min_per_order"),
        CheckConstraint(
            "max_per_customer IS NULL OR max_per_customer >= 1", name="max_per_customer"
        ),
    )


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[RowId]
    event_id: Mapped[EventRef]
    owner_id: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20))
    expires_at: Mapped[datetime]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    paid_at: Mapped[datetime | None]

    items: Mapped[list[OrderItem]] = relationship(
        back_populates="order", order_by="OrderItem.ticket_type_id", lazy="selectin"
    )

    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'paid', 'cancelled', 'expired', 'refunded')", name="status"
        ),
        # The sweeper's query: due pending holds, oldest first.
        Index("ix_orders_status_expires_at", "status", "expires_at"),
        # The quota count on every order: one buyer's live holds, found exactly. With only
        # (owner_id) and the sweeper's index, a planner without fresh statistics ANDed in
        # every pending hold, and a flash sale slowed as its table grew (bench/RESULTS.md).
        Index("ix_orders_owner_id_status_expires_at", "owner_id", "status", "expires_at"),
    )


class OrderItem(Base):
    __tablename__ = "order_items"

    order_id: Mapped[str] = key_to("orders")
    ticket_type_id: Mapped[str] = key_to("ticket_types", index=True)
    event_id: Mapped[CopiedEvent]  # the order's
    quantity: Mapped[int] = mapped_column(Integer)

    order: Mapped[Order] = relationship(back_populates="items")

    __table_args__ = (CheckConstraint("quantity >= 1", name="quantity_positive"),)


class IdempotencyRecord(Base):
    """The first successful answer to a keyed mutation, replayed on retries."""

    __tablename__ = "idempotency_records"

    owner_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    scope: Mapped[str] = mapped_column(String(200), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(index=True)
