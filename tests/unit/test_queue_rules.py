"""The waiting room's pure rules: order scores, the ETA, and what a signed token proves."""

from __future__ import annotations

from headcount.domain import queue as rules
from headcount.domain.queue import LATE_BASE, QueueOrder


def test_random_early_arrivals_draw_below_every_later_arrival() -> None:
    early = rules.arrival_score(QueueOrder.RANDOM, early=True, draw=LATE_BASE - 1, arrival=9)
    late = rules.arrival_score(QueueOrder.RANDOM, early=False, draw=0, arrival=1)
    assert early < late
    # FIFO ignores the draw, early or not: the arrival counter decides.
    assert rules.arrival_score(QueueOrder.FIFO, early=True, draw=5, arrival=3) == LATE_BASE + 3
    assert LATE_BASE + 2**52 < 2**53  # scores stay exact in a Redis sorted set (doubles)


def test_eta_counts_the_people_ahead_at_the_rate_after_opening() -> None:
    assert rules.eta_seconds(0, 60) == 1
    assert rules.eta_seconds(59, 60) == 60
    assert rules.eta_seconds(0, 6_000) == 1  # rounded up: never "0 s"
    assert rules.eta_seconds(9, 60, opens_in=30) == 40
    assert rules.eta_seconds(9, 60, opens_in=-5) == 10


def test_a_token_proves_its_parts_only_under_its_secret() -> None:
    token = rules.pass_of("s3cret", "wr_1", "user.with.dots", "7")
    assert rules.verified("s3cret", token, rules.PASS_KIND, 3) == ["wr_1", "user.with.dots", "7"]
    assert rules.verified("other", token, rules.PASS_KIND, 3) is None
    assert rules.verified("s3cret", token, rules.TICKET_KIND, 3) is None  # not a ticket
    assert rules.verified("s3cret", token[:-1] + "x", rules.PASS_KIND, 3) is None
    # Another visitor's parts under this pass's signature: refused.
    forged = rules.sign("s3cret", rules.PASS_KIND, "wr_1", "mallory", "7")
    swapped = forged.rsplit(".", 1)[0] + "." + token.rsplit(".", 1)[1]
    assert rules.verified("s3cret", swapped, rules.PASS_KIND, 3) is None


def test_malformed_tokens_are_refused_not_raised() -> None:
    for junk in ("", "qp1", "qp1.a.b.c", "qp1.!!.b.c.d", "x" * 2_000, "qp1.\u00e9.b.c.sig"):
        assert rules.unsigned_parts(junk, rules.PASS_KIND, 3) is None
        assert rules.verified("s", junk, rules.PASS_KIND, 3) is None
