"""Pure rules of live presence and huddles: limits, retry pacing. No I/O here."""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from enum import StrEnum
from typing import Any

# Optimistic huddle joins: how often to retry after losing a version race, and how long
# to wait (full jitter, capped exponential) so racing clients spread out instead of
# colliding again in lockstep.
HUDDLE_JOIN_ATTEMPTS = 12
HUDDLE_BACKOFF_BASE = 0.002
HUDDLE_BACKOFF_CAP = 0.05


class Count(StrEnum):
    """What one place of a live space is held by.

    `USERS`: one place per person: a user's several sockets and devices share it, the
    space counts distinct users, and the place is free once the last of them has gone.
    `CONNECTIONS`: every connection is a place of its own (a space whose limit is a
    per-connection resource, such as media slots).
    """

    USERS = "users"
    CONNECTIONS = "connections"


# How long a stream's place may be held for a returning viewer, at most (an hour): longer
# would let an abandoned place block newcomers for most of a session.
MAX_GRACE_SECONDS = 3600


def viewer_limit(virtual_settings: Mapping[str, Any] | None) -> int | None:
    """The event's stream cap; None (unset) means the stream is not capped."""
    value = (virtual_settings or {}).get("max_concurrent_viewers")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def stream_grace(virtual_settings: Mapping[str, Any] | None) -> float | None:
    """The event's own reconnect grace for its stream; None: the space's default."""
    value = (virtual_settings or {}).get("reconnect_grace_seconds")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def has_room(occupancy: int, limit: int | None) -> bool:
    """Admission rule shared by every live kind: strictly below the limit, now.

    A lowered limit therefore evicts nobody: it refuses newcomers until enough people
    have left that the occupancy is below it.
    """
    return limit is None or occupancy < limit


def backoff_delays(
    attempts: int = HUDDLE_JOIN_ATTEMPTS,
    *,
    base: float = HUDDLE_BACKOFF_BASE,
    cap: float = HUDDLE_BACKOFF_CAP,
    rng: random.Random | None = None,
) -> Iterator[float]:
    """Full-jitter delays before each retry (attempts - 1 of them)."""
    draw = rng or random
    for attempt in range(attempts - 1):
        yield draw.uniform(0, min(cap, base * 2**attempt))
