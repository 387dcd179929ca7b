"""Renewing a sold-out mark (capacity/soldout.py): one renewal at a time, in the mark's
second half, never past a release and never resurrecting a forgotten mark."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from headcount.capacity.soldout import SoldOutMarks
from headcount.domain.errors import SoldOut
from headcount.domain.tickets import OrderLine, TicketTypeTerms

TID, EID = "tt_1", "evt_1"
LINE = OrderLine(TID, 1)
TERMS = TicketTypeTerms(TID, EID, "Drop", None, None, None)
NOW = datetime(2026, 11, 30, tzinfo=UTC)


def marked(ttl: float, *, age: float) -> SoldOutMarks:
    """Marks with TID marked by a read taken `age` seconds ago."""
    marks = SoldOutMarks(ttl)
    marks.mark(LINE, EID, TERMS, SoldOut("sold out"), read_at=time.monotonic() - age)
    return marks


def test_a_young_mark_is_not_due() -> None:
    assert not marked(10.0, age=1.0).due(TID)


def test_a_mark_in_its_second_half_is_due_once_until_renewed() -> None:
    marks = marked(10.0, age=6.0)
    assert marks.due(TID)
    assert not marks.due(TID), "a second renewal while one is under way"
    marks.renew(TID, TERMS, read_at=time.monotonic())
    assert not marks.due(TID), "renewed: young again"
    assert marks.refusal(EID, [LINE], NOW) is not None


def test_a_renewal_extends_the_mark_from_its_read() -> None:
    marks = marked(1.0, age=0.9)
    assert marks.due(TID)
    marks.renew(TID, TERMS, read_at=time.monotonic())
    time.sleep(0.2)  # past the first read's TTL, within the renewal's
    assert marks.refusal(EID, [LINE], NOW) is not None


def test_a_renewal_that_found_room_ends_the_mark() -> None:
    marks = marked(10.0, age=6.0)
    assert marks.due(TID)
    marks.renew(TID, None, read_at=time.monotonic())
    assert marks.refusal(EID, [LINE], NOW) is None


def test_a_release_during_the_renewal_read_wins() -> None:
    marks = marked(1.0, age=0.9)
    assert marks.due(TID)
    read_at = time.monotonic()
    marks.forget([TID])  # a release commits while the renewal reads
    marks.renew(TID, TERMS, read_at=read_at)
    assert marks.refusal(EID, [LINE], NOW) is None


def test_a_release_before_the_renewal_read_does_not_extend() -> None:
    """The mark was forgotten and a newer read marked it again: a renewal that started
    before the release must not stretch the new mark past its own read's TTL."""
    marks = marked(1.0, age=0.9)
    assert marks.due(TID)
    stale_read = time.monotonic()
    marks.forget([TID])
    time.sleep(0.01)
    marks.mark(LINE, EID, TERMS, SoldOut("sold out"), read_at=time.monotonic())
    until = marks._marks[TID].until
    marks.renew(TID, TERMS, read_at=stale_read)
    assert marks._marks[TID].until == until
