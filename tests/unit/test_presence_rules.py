"""Pure presence rules: limits, lease ids, retry pacing (no I/O)."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from headcount.capacity.spaces import (
    BOOTH,
    BREAKOUT_ROOM,
    SPACES,
    VIEWERS,
    live_space,
    register,
)
from headcount.domain.presence import Count, backoff_delays, has_room, stream_grace, viewer_limit
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


def test_an_events_own_stream_grace() -> None:
    assert stream_grace({"reconnect_grace_seconds": 45}) == 45.0
    assert stream_grace({"reconnect_grace_seconds": 0}) == 0.0
    # Unset, null, or not a number of seconds: the space's default applies.
    for settings in (
        None,
        {},
        {"reconnect_grace_seconds": None},
        {"reconnect_grace_seconds": True},
    ):
        assert stream_grace(settings) is None
    assert stream_grace({"reconnect_grace_seconds": "45"}) is None


class _Event:
    def __init__(self, **virtual: object) -> None:
        self.virtual_settings = virtual


def test_grace_comes_from_the_row_then_the_space_then_the_setting() -> None:
    assert VIEWERS.grace_for(_Event(reconnect_grace_seconds=5), 15.0) == 5.0
    assert VIEWERS.grace_for(_Event(), 15.0) == 15.0
    assert replace(VIEWERS, grace=2.0).grace_for(_Event(), 15.0) == 2.0
    assert replace(VIEWERS, grace=2.0).grace_for(_Event(reconnect_grace_seconds=0), 15.0) == 0.0
    assert BOOTH.grace_for(object(), 15.0) == 15.0  # a booth's row carries no grace


def test_every_live_kind_counts_people() -> None:
    assert {s.kind: s.count for s in (VIEWERS, BOOTH, BREAKOUT_ROOM)} == dict.fromkeys(
        ("viewers", "booth", "room"), Count.USERS
    )
