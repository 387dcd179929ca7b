"""Pure presence rules: limits, lease ids, retry pacing (no I/O)."""

from __future__ import annotations

import random

import pytest

from headcount.domain.presence import backoff_delays, has_room, viewer_limit
from headcount.presence.base import Resource, new_lease_id, parse_lease_id


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"max_concurrent_viewers": 25}, 25),
        ({"max_concurrent_viewers": 0}, 0),
        ({}, None),
        (None, None),
        ({"max_concurrent_viewers": None}, None),
        ({"max_concurrent_viewers": True}, None),  # a bool is not a limit
        ({"max_concurrent_viewers": "10"}, None),
    ],
)
def test_viewer_limit(settings: dict[str, object] | None, expected: int | None) -> None:
    assert viewer_limit(settings) == expected


def test_has_room_is_strictly_below_the_limit() -> None:
    assert has_room(0, None)
    assert has_room(9, 10)
    assert not has_room(10, 10)
    assert not has_room(12, 10)  # over a lowered limit: nobody new
    assert not has_room(0, 0)


def test_lease_ids_name_their_resource_and_reject_garbage() -> None:
    booth = Resource("booth", "bth_abc-DEF_1")
    lease_id = new_lease_id(booth)
    assert parse_lease_id(lease_id) == booth
    assert new_lease_id(booth) != lease_id
    for bad in (
        "",
        "booth",
        "booth.bth_x",
        "nope.bth_x.abcdefghij",
        "booth.bth_x.short",
        "a" * 500,
    ):
        assert parse_lease_id(bad) is None
    with pytest.raises(ValueError, match="unknown presence kind"):
        Resource("lounge", "x")


def test_backoff_delays_are_bounded_jittered_and_finite() -> None:
    delays = list(backoff_delays(6, base=0.01, cap=0.05, rng=random.Random(7)))
    assert len(delays) == 5
    assert all(0 <= d <= min(0.05, 0.01 * 2**i) for i, d in enumerate(delays))
    assert len(set(delays)) == 5
