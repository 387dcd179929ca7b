"""The failover guard (`HEADCOUNT_REDIS_REPLICA_ACK_MS`): an admission is answered only
once a replica has it.

On the cluster every master has a replica, so admissions pass and say so quickly. On one
Redis without replicas nothing can confirm an admission: every one is refused with 503
and its place given back at once, while refusals (full, closed) are still answered — a
refusal lost in a failover loses nothing. The failover itself is in
tests/e2e/faults/test_presence_failover.py.
"""

from __future__ import annotations

import asyncio
import secrets
import time

import pytest

from headcount.config import Settings
from headcount.domain.errors import ServiceUnavailable
from headcount.presence import Admission, Resource, build_presence
from headcount.presence.batching import ReplicaAck
from headcount.presence.redis import RedisPresence

GUARD = ReplicaAck(replicas=1, timeout_ms=50)


def _room() -> Resource:
    return Resource("booth", f"bth_{secrets.token_hex(6)}")


async def test_with_replicas_admissions_pass_the_guard(redis_cluster_url: str) -> None:
    engine = RedisPresence(
        redis_cluster_url, prefix=f"hcg-{secrets.token_hex(4)}", replica_ack=GUARD
    )
    try:
        where = _room()
        started = time.perf_counter()
        answers = await asyncio.gather(
            *(engine.admit(where, f"u{n}", limit=30, ttl=30) for n in range(100))
        )
        elapsed = time.perf_counter() - started
        assert sum(a.admitted for a in answers) == 30
        assert await engine.occupancy(where) == 30
        assert elapsed < 2.0  # a replica acknowledges in well under the 50 ms bound
    finally:
        await engine.close()


async def test_without_a_replica_admissions_are_refused_and_given_back(redis_url: str) -> None:
    engine = RedisPresence(redis_url, prefix=f"hcg-{secrets.token_hex(4)}", replica_ack=GUARD)
    try:
        where = _room()
        results = await asyncio.gather(
            *(engine.admit(where, f"u{n}", limit=5, ttl=30) for n in range(10)),
            return_exceptions=True,
        )
        unconfirmed = [r for r in results if isinstance(r, ServiceUnavailable)]
        # The five the script admitted are refused with 503; the other five found the room
        # full (of unconfirmed leases, until given back) and were told so.
        assert len(unconfirmed) == 5, results
        assert all("replica" in str(r) for r in unconfirmed)
        assert all(isinstance(r, Admission) and not r.admitted for r in results[5:])
        deadline = time.monotonic() + 5
        while await engine.occupancy(where) != 0:  # given back, not left for the TTL
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        # Refusals need no replica: a full room and a closed one still answer at once.
        assert not (await engine.admit(where, "late", limit=0, ttl=30)).admitted
        await engine.close_resource(where)
        closed = await engine.admit(where, "later", limit=None, ttl=30)
        assert closed.closed
        # Reads and renewals are not guarded either.
        assert await engine.occupancies([where]) == {where: 0}
    finally:
        await engine.close()


@pytest.mark.parametrize(("ack_ms", "guarded"), [(0, False), (25, True)])
def test_the_setting_turns_the_guard_on(ack_ms: int, guarded: bool) -> None:
    settings = Settings(
        redis_url="redis+cluster://127.0.0.1:7001",
        redis_replica_ack_ms=ack_ms,
        redis_replica_acks=2,
    )
    engine = build_presence(settings)
    assert isinstance(engine, RedisPresence)
    assert engine.clustered
    expected = ReplicaAck(replicas=2, timeout_ms=ack_ms) if guarded else None
    assert engine._batch._ack == expected
