"""Attendance rules without I/O: caps, party sizes, offer sizes, entry states."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from headcount.domain import attendance
from headcount.domain.attendance import EntryStatus
from headcount.domain.errors import InvalidQuantity


@pytest.mark.parametrize(
    ("maximum", "taken", "left", "full"),
    [
        (None, 0, None, False),
        (None, 10_000, None, False),
        (0, 0, 0, True),
        (5, 3, 2, False),
        (5, 5, 0, True),
        (2, 7, 0, True),
    ],
)
def test_remaining_and_full(maximum: int | None, taken: int, left: int | None, full: bool) -> None:
    assert attendance.remaining(maximum, taken) == left
    assert attendance.is_full(maximum, taken) is full


@given(st.integers(min_value=0, max_value=10**6), st.integers(min_value=0, max_value=10**6))
def test_remaining_is_never_negative_after_a_lowered_cap(maximum: int, taken: int) -> None:
    left = attendance.remaining(maximum, taken)
    assert left is not None
    assert 0 <= left <= maximum
    assert attendance.is_full(maximum, taken) == (left == 0)


@pytest.mark.parametrize("size", [0, -1, attendance.MAX_PARTY_SIZE + 1])
def test_party_size_bounds(size: int) -> None:
    with pytest.raises(InvalidQuantity):
        attendance.check_party_size(size)


def test_party_size_inside_bounds() -> None:
    attendance.check_party_size(1)
    attendance.check_party_size(attendance.MAX_PARTY_SIZE)


def test_waitlist_quantity_respects_max_per_order() -> None:
    attendance.check_waitlist_quantity(2, 2)
    with pytest.raises(InvalidQuantity) as refused:
        attendance.check_waitlist_quantity(3, 2)
    assert refused.value.extra["max_quantity"] == 2
    with pytest.raises(InvalidQuantity):
        attendance.check_waitlist_quantity(attendance.MAX_WAITLIST_QUANTITY + 1, None)


@given(st.integers(min_value=1, max_value=50), st.integers(min_value=0, max_value=50))
def test_offer_never_exceeds_what_was_asked_or_what_is_free(wanted: int, free: int) -> None:
    size = attendance.offer_size(wanted, free)
    assert 0 <= size <= min(wanted, free)
    # Stock never idles while someone waits: either the ask is met or all free stock is offered.
    assert size in (wanted, free)


def test_only_waiting_and_offered_entries_are_live() -> None:
    assert {s for s in EntryStatus if s.is_live} == {EntryStatus.WAITING, EntryStatus.OFFERED}
