"""Pool and buyer-limit rules without I/O."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from headcount.domain.errors import CustomerLimitReached, InvalidQuantity, InvalidRequest
from headcount.domain.pools import admission_limit, check_customer_limit, over_by, remaining
from headcount.domain.tickets import OrderLine, TicketTypeTerms, check_line

NOW = datetime(2026, 11, 24, tzinfo=UTC)


@pytest.mark.parametrize(
    ("capacity", "ratio", "limit"),
    [
        (None, 0.0, None),
        (None, 0.5, None),
        (0, 0.5, 0),
        (100, 0.0, 100),
        (100, 0.15, 115),  # float arithmetic says 114.99999999999999
        (100, 0.1, 110),
        (7, 0.5, 10),  # floor(10.5)
        (3, 0.33, 3),  # floor(3.99)
    ],
)
def test_admission_limit_is_the_floor_of_the_allowance(
    capacity: int | None, ratio: float, limit: int | None
) -> None:
    assert admission_limit(capacity, ratio) == limit


@pytest.mark.parametrize("ratio", [-0.01, 10.5])
def test_overbook_ratio_out_of_range_is_refused(ratio: float) -> None:
    with pytest.raises(InvalidRequest):
        admission_limit(10, ratio)


def test_over_by_and_remaining_never_go_negative() -> None:
    assert over_by(12, 10) == 2
    assert over_by(8, 10) == 0
    assert over_by(8, None) == 0
    assert remaining(12, 10) == 0
    assert remaining(8, 10) == 2
    assert remaining(8, None) is None


def test_customer_limit() -> None:
    check_customer_limit(already=2, asking=1, limit=3, what="'GA'")
    check_customer_limit(already=50, asking=50, limit=None, what="'GA'")
    with pytest.raises(CustomerLimitReached) as refused:
        check_customer_limit(already=2, asking=2, limit=3, what="'GA'", ticket_type_id="tt_1")
    assert refused.value.code == "customer_limit_reached"
    assert refused.value.status == 409
    assert refused.value.extra == {
        "max_per_customer": 3,
        "already": 2,
        "requested": 2,
        "ticket_type_id": "tt_1",
    }


def _terms(*, low: int | None = None, high: int | None = None) -> TicketTypeTerms:
    return TicketTypeTerms("tt_1", "evt_1", "Group", high, None, None, low)


def test_min_per_order_is_checked_before_stock() -> None:
    check_line(OrderLine("tt_1", 4), _terms(low=4, high=8), event_id="evt_1", now=NOW)
    with pytest.raises(InvalidQuantity) as refused:
        check_line(OrderLine("tt_1", 3), _terms(low=4), event_id="evt_1", now=NOW)
    assert refused.value.extra["min_per_order"] == 4
    with pytest.raises(InvalidQuantity):
        check_line(OrderLine("tt_1", 9), _terms(low=4, high=8), event_id="evt_1", now=NOW)


def test_terms_without_min_per_order_keep_their_old_shape() -> None:
    terms = TicketTypeTerms("tt_1", "evt_1", "GA", None, None, None)
    assert terms.min_per_order is None
    check_line(OrderLine("tt_1", 1), terms, event_id="evt_1", now=NOW)
