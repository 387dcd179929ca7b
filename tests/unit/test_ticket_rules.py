"""Ticket rules without I/O: quantities, sales windows, lock order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from headcount.domain.errors import InvalidQuantity, InvalidRequest, SalesClosed
from headcount.domain.tickets import (
    MAX_QUANTITY,
    OrderLine,
    TicketTypeTerms,
    available,
    check_line,
    normalize_lines,
)

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)


def terms(
    *,
    max_per_order: int | None = None,
    sales_start: datetime | None = None,
    sales_end: datetime | None = None,
) -> TicketTypeTerms:
    return TicketTypeTerms(
        id="tt_a",
        event_id="evt_x",
        name="General",
        max_per_order=max_per_order,
        sales_start=sales_start,
        sales_end=sales_end,
    )


def test_lines_are_merged_and_sorted_for_a_fixed_lock_order() -> None:
    lines = normalize_lines(
        [OrderLine("tt_b", 1), OrderLine("tt_a", 2), OrderLine("tt_b", 3)], max_items=5
    )
    assert lines == [OrderLine("tt_a", 2), OrderLine("tt_b", 4)]


@pytest.mark.parametrize("quantity", [0, -1, -(10**9)])
def test_non_positive_quantities_are_refused(quantity: int) -> None:
    with pytest.raises(InvalidQuantity):
        normalize_lines([OrderLine("tt_a", quantity)], max_items=5)


def test_empty_and_oversized_orders_are_refused() -> None:
    with pytest.raises(InvalidRequest):
        normalize_lines([], max_items=5)
    with pytest.raises(InvalidRequest):
        normalize_lines([OrderLine(f"tt_{i}", 1) for i in range(6)], max_items=5)


def test_line_must_belong_to_the_event() -> None:
    with pytest.raises(InvalidRequest):
        check_line(OrderLine("tt_a", 1), terms(), event_id="evt_other", now=NOW)


def test_max_per_order_and_huge_quantities() -> None:
    check_line(OrderLine("tt_a", 4), terms(max_per_order=4), event_id="evt_x", now=NOW)
    with pytest.raises(InvalidQuantity) as refused:
        check_line(OrderLine("tt_a", 5), terms(max_per_order=4), event_id="evt_x", now=NOW)
    assert refused.value.extra["max_per_order"] == 4
    with pytest.raises(InvalidQuantity):
        check_line(OrderLine("tt_a", MAX_QUANTITY + 1), terms(), event_id="evt_x", now=NOW)


def test_sales_window_is_half_open() -> None:
    window = terms(sales_start=NOW, sales_end=NOW + timedelta(hours=1))
    check_line(OrderLine("tt_a", 1), window, event_id="evt_x", now=NOW)
    with pytest.raises(SalesClosed):
        check_line(OrderLine("tt_a", 1), window, event_id="evt_x", now=NOW - timedelta(seconds=1))
    with pytest.raises(SalesClosed):
        check_line(OrderLine("tt_a", 1), window, event_id="evt_x", now=NOW + timedelta(hours=1))


def test_available_never_goes_negative() -> None:
    assert available(10, 3, 2) == 5
    assert available(10, 8, 4) == 0
