"""A Redis Cluster master dies under a join storm: with the failover guard no place is
given twice; without it, some are (the control, measured and reported).

Each leg runs `FAILOVERS` rounds of `support.failover_storm.failover_round` on a private
3+3 cluster: a join storm, the owning master's replica link cut for a moment, the master
SIGKILLed, its replica promoted, the storm carried on until the resource is full again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from headcount.presence.batching import ReplicaAck
from support import services
from support.failover_storm import LIMIT, Round, engines_for, failover_round
from support.private_services import PrivateRedisCluster, private_redis_cluster, redis_available

pytestmark = [pytest.mark.slow, pytest.mark.redis]

FAILOVERS = 5
GUARD = ReplicaAck(replicas=1, timeout_ms=100)


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivateRedisCluster]:
    if not redis_available():
        services.missing("redis-server", "redis-server is not installed", skip_reason="no redis")
    with private_redis_cluster() as found:  # its own: this module kills masters
        yield found


async def _storms(cluster: PrivateRedisCluster, guard: ReplicaAck | None) -> list[Round]:
    engines = engines_for(cluster, guard)
    try:
        return [await failover_round(cluster, engines) for _ in range(FAILOVERS)]
    finally:
        for engine in engines:
            await engine.close()


def _report(label: str, rounds: list[Round]) -> str:
    lines = [
        f"  failover on :{r.master}: {len(r.admitted)} admitted for {LIMIT} places "
        f"(over {r.over_admitted}), {r.lost} admitted leases lost, {r.unavailable} x 503, "
        f"{r.refused} refused, {r.live_after} live after, {r.seconds:.1f}s"
        for r in rounds
    ]
    total = sum(r.over_admitted for r in rounds)
    return f"\nguard {label}: {total} over-admissions across {len(rounds)} failovers\n" + "\n".join(
        lines
    )


async def test_without_the_guard_a_failover_gives_places_twice(
    cluster: PrivateRedisCluster, record_property: Callable[[str, object], None]
) -> None:
    """The control: the measured figure is reported; the scenario must bite at all."""
    rounds = await _storms(cluster, None)
    print(_report("off", rounds))
    total = sum(r.over_admitted for r in rounds)
    record_property("over_admissions_guard_off", total)
    assert all(r.unavailable > 0 for r in rounds)  # every round went through a failover
    assert total > 0, "no admission was lost: the storm did not test the guard"


async def test_with_the_guard_no_failover_gives_a_place_twice(
    cluster: PrivateRedisCluster, record_property: Callable[[str, object], None]
) -> None:
    rounds = await _storms(cluster, GUARD)
    print(_report("on", rounds))
    record_property("over_admissions_guard_on", sum(r.over_admitted for r in rounds))
    assert all(r.unavailable > 0 for r in rounds)
    assert [r.over_admitted for r in rounds] == [0] * FAILOVERS
    assert [r.lost for r in rounds] == [0] * FAILOVERS  # every "yes" survived the failover
    assert all(r.live_after == LIMIT for r in rounds)  # and the places were all given
