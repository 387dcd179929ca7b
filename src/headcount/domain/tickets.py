"""Ticket inventory rules: quantities, sales windows and the order state machine.

The counters themselves are changed by the ledger's atomic statements; these functions
decide, without I/O, whether a request is even eligible to be tried.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from headcount.domain.errors import InvalidQuantity, InvalidRequest, SalesClosed

MAX_QUANTITY = 1_000_000


class OrderStatus(StrEnum):
    PENDING = "pending"
    PAID = "paid"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    REFUNDED = "refunded"


@dataclass(frozen=True, slots=True)
class OrderLine:
    ticket_type_id: str
    quantity: int


@dataclass(frozen=True, slots=True)
class TicketTypeTerms:
    """The static terms a line is checked against (not the live counters)."""

    id: str
    event_id: str
    name: str
    max_per_order: int | None
    sales_start: datetime | None
    sales_end: datetime | None
    min_per_order: int | None = None


def normalize_lines(lines: Iterable[OrderLine], *, max_items: int) -> list[OrderLine]:
    """Merge repeated ticket types and sort by id.

    Sorting gives every transaction the same row-lock order, which is what keeps
    multi-item orders deadlock-free (docs/concurrency.md).
    """
    merged: dict[str, int] = {}
    for line in lines:
        if line.quantity < 1:
            raise InvalidQuantity(
                f"quantity must be at least 1, got {line.quantity}",
                ticket_type_id=line.ticket_type_id,
            )
        merged[line.ticket_type_id] = merged.get(line.ticket_type_id, 0) + line.quantity
    if not merged:
        raise InvalidRequest("an order needs at least one item")
    if len(merged) > max_items:
        raise InvalidRequest(f"an order may hold at most {max_items} ticket types")
    return [OrderLine(tid, qty) for tid, qty in sorted(merged.items())]


def check_line(line: OrderLine, terms: TicketTypeTerms, *, event_id: str, now: datetime) -> None:
    """Raise if this line may not be ordered at all, whatever the stock."""
    if terms.event_id != event_id:
        raise InvalidRequest(
            f"ticket type {terms.id} does not belong to event {event_id}",
            ticket_type_id=terms.id,
        )
    if line.quantity > MAX_QUANTITY:
        raise InvalidQuantity(f"quantity {line.quantity} is too large", ticket_type_id=terms.id)
    if terms.max_per_order is not None and line.quantity > terms.max_per_order:
        raise InvalidQuantity(
            f"at most {terms.max_per_order} of {terms.name!r} per order",
            ticket_type_id=terms.id,
            max_per_order=terms.max_per_order,
        )
    if terms.min_per_order is not None and line.quantity < terms.min_per_order:
        raise InvalidQuantity(
            f"at least {terms.min_per_order} of {terms.name!r} per order",
            ticket_type_id=terms.id,
            min_per_order=terms.min_per_order,
        )
    if terms.sales_start is not None and now < terms.sales_start:
        raise SalesClosed(
            f"sales of {terms.name!r} open at {terms.sales_start.isoformat()}",
            ticket_type_id=terms.id,
        )
    if terms.sales_end is not None and now >= terms.sales_end:
        raise SalesClosed(
            f"sales of {terms.name!r} closed at {terms.sales_end.isoformat()}",
            ticket_type_id=terms.id,
        )


def available(total: int, sold: int, reserved: int) -> int:
    return max(0, total - sold - reserved)


def lines_total(lines: Sequence[OrderLine]) -> int:
    return sum(line.quantity for line in lines)
