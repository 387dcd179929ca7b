"""Pure presence rules: limits, lease ids, retry pacing (no I/O)."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from headcount.capacity.spaces import BOOTH, SPACES, live_space, register
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
        "No-pe.bth_x.abcdefghij",
        "booth.bth_x.short",
        "a" * 500,
    ):
        assert parse_lease_id(bad) is None
    for malformed in ("Lounge", "lounge.x", "", "a" * 33, "9lives"):
        with pytest.raises(ValueError, match="malformed presence kind"):
            Resource(malformed, "x")


def test_presence_serves_any_well_formed_kind() -> None:
    """Which kinds exist is the registry's business (capacity/spaces.py), not presence's."""
    lounge = Resource("lounge", "evt_1")
    assert parse_lease_id(new_lease_id(lounge)) == lounge
    assert parse_lease_id("lounge.evt_1.abcdefghij") == lounge


def test_the_registry_holds_each_lease_kind_once() -> None:
    assert {k for k, s in SPACES.items() if s.live} == {"viewers", "booth", "room"}
    assert live_space("huddle") is None  # huddles are durable rows, not leases
    for taken_or_malformed in (BOOTH.kind, "Lounge", "lounge.x"):
        with pytest.raises(ValueError, match="malformed or taken"):
            register(replace(BOOTH, kind=taken_or_malformed))
    assert SPACES["booth"] is BOOTH


def test_backoff_delays_are_bounded_jittered_and_finite() -> None:
    delays = list(backoff_delays(6, base=0.01, cap=0.05, rng=random.Random(7)))
    assert len(delays) == 5
    assert all(0 <= d <= min(0.05, 0.01 * 2**i) for i, d in enumerate(delays))
    assert len(set(delays)) == 5
