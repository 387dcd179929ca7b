"""A join storm across a Redis Cluster failover: how many places were given twice.

Redis replicates asynchronously, so a master that dies may take with it admissions it had
already answered. One round:

1. A fresh resource with a limit; `WORKERS` joiners (over two engines, as two API
   processes would be) keep asking for a place, each at most every `PACE` seconds.
2. When about a third of the places are taken, the master that owns the resource's slot
   loses its replica: the replica stalls (SIGSTOP) and the master drops its link
   (`CLIENT KILL TYPE replica`). This is the window every asynchronous replication has —
   a slow replica, a network blip — made long enough to see: for `LAG` seconds the master
   keeps admitting on its own.
3. The master is SIGKILLed and the replica resumes; the cluster promotes it (about
   `cluster-node-timeout` later). The joiners meet 503s meanwhile, then carry on against
   the new master, which knows only what it had replicated. As soon as the promotion is
   seen, the killed node is started again, as a supervisor would: it rejoins as the new
   master's replica (with the guard on, nothing is admitted on that slot until then).
4. The storm goes on until the new master refuses (the resource is full), then stops and
   the cluster is left healthy.

Over-admission = admissions answered "yes" minus the limit (every joiner keeps its place, the
TTL is long, nobody leaves): places promised twice. With the failover guard each "yes"
was confirmed by the replica first, so the figure must be 0 and every admitted lease must
still be live on the new master.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field

from headcount.domain.errors import ServiceUnavailable
from headcount.presence import Resource
from headcount.presence.batching import ReplicaAck
from headcount.presence.redis import RedisPresence
from support.private_services import PrivateRedisCluster

WORKERS = 60
PACE = 0.02  # seconds a joiner waits between two attempts
LIMIT = 240
LAG = 0.3  # seconds the master admits with its replica cut off
TTL = 300.0  # nobody's lease lapses during a round
ROUND_DEADLINE = 30.0


@dataclass
class Round:
    master: int
    admitted: set[str] = field(default_factory=set)
    refused: int = 0
    unavailable: int = 0
    live_after: int = 0
    lost: int = 0  # admitted leases the new master does not know
    seconds: float = 0.0

    @property
    def over_admitted(self) -> int:
        return max(0, len(self.admitted) - LIMIT)


async def _joiner(
    engine: RedisPresence, where: Resource, me: int, result: Round, stop: asyncio.Event
) -> None:
    attempt = 0
    while not stop.is_set():
        attempt += 1
        try:
            answer = await engine.admit(where, f"j{me}-{attempt}", limit=LIMIT, ttl=TTL)
        except ServiceUnavailable:
            result.unavailable += 1
        else:
            if answer.lease is not None:
                result.admitted.add(answer.lease.lease_id)
            else:
                result.refused += 1
        await asyncio.sleep(PACE)


async def failover_round(
    cluster: PrivateRedisCluster, engines: list[RedisPresence], *, lag: float = LAG
) -> Round:
    """One join storm across one failover (see the module docstring)."""
    where = Resource("viewers", f"evt_{secrets.token_hex(6)}")
    master = cluster.master_for(engines[0]._keys(where)[0])
    replica = cluster.replica_of(master)
    result = Round(master)
    stop = asyncio.Event()
    started = time.monotonic()
    joiners = [
        asyncio.create_task(_joiner(engines[n % len(engines)], where, n, result, stop))
        for n in range(WORKERS)
    ]
    try:
        while len(result.admitted) < LIMIT // 3:
            assert time.monotonic() - started < ROUND_DEADLINE, "the storm never got going"
            await asyncio.sleep(0.01)
        if lag > 0:
            await asyncio.to_thread(cluster.pause_node, replica)
            await asyncio.to_thread(cluster.command, master, "CLIENT", "KILL", "TYPE", "replica")
            await asyncio.sleep(lag)
        await asyncio.to_thread(cluster.kill_node, master)
        if lag > 0:
            await asyncio.to_thread(cluster.resume_node, replica)
        await asyncio.to_thread(_wait_promoted, cluster, replica, started)
        await asyncio.to_thread(cluster.start_node, master)  # back, as the replica
        # Until the new master is full: then every joiner is refused.
        refused_before = result.refused
        while result.refused - refused_before < WORKERS:
            assert time.monotonic() - started < ROUND_DEADLINE, "no failover: still down"
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.gather(*joiners, return_exceptions=True)
    result.seconds = time.monotonic() - started
    leases = {lease.lease_id for lease in await engines[0].leases(where)}
    result.live_after = len(leases)
    result.lost = len(result.admitted - leases)
    await asyncio.to_thread(cluster.wait_healthy)
    return result


def _wait_promoted(cluster: PrivateRedisCluster, replica: int, started: float) -> None:
    while not any(node.port == replica and node.slots for node in cluster.masters()):
        assert time.monotonic() - started < ROUND_DEADLINE, "the replica was never promoted"
        time.sleep(0.05)


def engines_for(cluster: PrivateRedisCluster, guard: ReplicaAck | None) -> list[RedisPresence]:
    """Two engines, as two API processes would have, with keys of their own."""
    prefix = f"hcfo-{secrets.token_hex(4)}"
    return [RedisPresence(cluster.url, prefix=prefix, replica_ack=guard) for _ in range(2)]
