"""The live engine: who is in a room right now, as leases that expire unless renewed."""

from __future__ import annotations

from headcount.config import Settings
from headcount.presence.base import (
    Admission,
    Lease,
    LeaseState,
    Place,
    Presence,
    Resource,
    Tally,
    parse_lease_id,
)
from headcount.presence.memory import MemoryPresence

__all__ = [
    "Admission",
    "Lease",
    "LeaseState",
    "MemoryPresence",
    "Place",
    "Presence",
    "Resource",
    "Tally",
    "build_presence",
    "parse_lease_id",
]


def build_presence(settings: Settings) -> Presence:
    """Redis when configured (every API process shares it), else this process's memory."""
    if settings.redis_url:
        from headcount.presence.batching import ReplicaAck
        from headcount.presence.redis import RedisPresence

        guard = None
        if settings.redis_replica_ack_ms:
            guard = ReplicaAck(settings.redis_replica_acks, settings.redis_replica_ack_ms)
        return RedisPresence(
            settings.redis_url, prefix=settings.redis_key_prefix, replica_ack=guard
        )
    return MemoryPresence()
