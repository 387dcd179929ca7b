"""Presence on a real Redis Cluster (3 masters, 3 replicas): what only a cluster can get wrong.

The contract itself runs on the cluster with the rest of the presence suite (the
`redis-cluster` parameter). Here: every script's keys share one slot; calls for resources
owned by different masters are split into one pipeline per master; a call sent to the
wrong node — the client's slot map gone stale after a resharding — follows `MOVED`, and
one whose slot is being migrated follows `ASK`.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Hashable
from typing import Any

import pytest
from redis.asyncio.cluster import ClusterNode
from redis.crc import key_slot
from redis.exceptions import AskError

from headcount.domain.errors import ServiceUnavailable
from headcount.presence import Resource
from headcount.presence.batching import Command, Script
from headcount.presence.redis import RedisPresence
from support.private_services import PrivateRedisCluster
from support.redis_backends import redis_engine


@pytest.fixture
async def engine(redis_cluster_url: str) -> AsyncIterator[RedisPresence]:
    async with redis_engine(redis_cluster_url, "hccl") as found:
        yield found


def _resources(count: int) -> list[Resource]:
    return [Resource("booth", f"bth_{secrets.token_hex(6)}") for _ in range(count)]


async def test_every_script_touches_one_slot(
    engine: RedisPresence, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[list[str]] = []
    real = engine._batch.run

    async def spy(script: Script, keys: list[str], args: list[Any], **kw: bool) -> Any:
        seen.append(keys)
        return await real(script, keys, args, **kw)

    monkeypatch.setattr(engine._batch, "run", spy)
    where = _resources(1)[0]
    admitted = await engine.admit(where, "ann", limit=3, ttl=30)
    assert admitted.lease is not None
    lease_id = admitted.lease.lease_id
    await engine.renew(lease_id, "ann", ttl=30)
    await engine.occupancy(where)
    await engine.occupancies(_resources(5))
    await engine.leases(where)
    await engine.release(lease_id, "ann")
    await engine.close_resource(where)
    assert len(seen) == 11  # admit, renew, count, 5 counts, list, release, close
    for keys in seen:
        assert len({key_slot(k.encode()) for k in keys}) == 1, keys
        assert all("{booth.bth_" in k for k in keys), keys  # the resource is the hash tag


async def test_calls_are_split_into_one_pipeline_per_master(
    engine: RedisPresence, monkeypatch: pytest.MonkeyPatch
) -> None:
    routes: list[tuple[str, int]] = []
    transport = engine._batch._transport
    real = transport.pipeline

    async def counted(route: Hashable, commands: list[Command]) -> list[Any]:
        assert isinstance(route, ClusterNode)
        routes.append((route.name, len(commands)))
        return await real(route, commands)

    monkeypatch.setattr(transport, "pipeline", counted)
    rooms = _resources(60)  # spread over all three masters' slots
    answers = await asyncio.gather(
        *(engine.admit(r, f"u{n}", limit=2, ttl=30) for r in rooms for n in range(3))
    )
    admitted = [a for a in answers if a.admitted]
    assert len(admitted) == 120  # 2 per room, exactly
    assert await engine.occupancies(rooms) == dict.fromkeys(rooms, 2)
    masters = {name for name, _ in routes}
    assert len(masters) == 3
    # The 180 joins of one loop turn went as one pipeline per master, not 180 calls.
    assert len(routes) <= 12, routes
    assert sum(size for _, size in routes) >= 180 + 60


async def test_a_stale_slot_map_follows_moved(
    engine: RedisPresence, redis_cluster: PrivateRedisCluster
) -> None:
    where = _resources(1)[0]
    first = await engine.admit(where, "ann", limit=2, ttl=30)  # the map is loaded
    assert first.admitted
    client = engine._batch._transport.client  # type: ignore[attr-defined]
    slot = key_slot(engine._keys(where)[0].encode())
    owner = client.nodes_manager.slots_cache[slot][0]
    wrong = next(n for n in client.get_primaries() if n.name != owner.name)
    client.nodes_manager.slots_cache[slot] = [wrong]  # as if the slot had moved there

    answers = await asyncio.gather(
        *(engine.admit(where, f"u{n}", limit=2, ttl=30) for n in range(5))
    )
    assert sum(a.admitted for a in answers) == 1  # ann and one more: the limit holds
    assert await engine.occupancy(where) == 2
    assert client.nodes_manager.slots_cache[slot][0].name == owner.name  # MOVED fixed it


async def test_a_migrating_slot_follows_ask(
    engine: RedisPresence, redis_cluster: PrivateRedisCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    redirects: list[str] = []
    transport = engine._batch._transport
    real = transport.redirected

    async def spy(error: AskError) -> Hashable:
        redirects.append(type(error).__name__)
        return await real(error)

    monkeypatch.setattr(transport, "redirected", spy)
    where = _resources(1)[0]
    admitted = await engine.admit(where, "ann", limit=5, ttl=30)
    assert admitted.lease is not None
    keys = engine._keys(where)
    slot = key_slot(keys[0].encode())
    layout = redis_cluster.nodes()
    source = next(n for n in layout if n.master and any(a <= slot <= b for a, b in n.slots))
    target = next(n for n in layout if n.master and n.slots and n.node_id != source.node_id)
    cli = redis_cluster.command
    try:
        cli(target.port, "CLUSTER", "SETSLOT", slot, "IMPORTING", source.node_id)
        cli(source.port, "CLUSTER", "SETSLOT", slot, "MIGRATING", target.node_id)
        cli(source.port, "MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *keys)
        # The keys now live on the target while the slot still belongs to the source: the
        # source answers ASK and the script is sent there after ASKING. The target cannot
        # run it while some of its keys (a resource's optional ones: the closed flag, the
        # grace index) may still be on the source, and answers TRYAGAIN until the move
        # ends: the caller gets a 503 (a documented limit while resharding), never a 500.
        with pytest.raises(ServiceUnavailable):
            await engine.renew(admitted.lease.lease_id, "ann", ttl=30)
        assert set(redirects) == {"AskError"}
    finally:
        for node in (target, source):  # finish the move (target first): the slot is the target's
            cli(node.port, "CLUSTER", "SETSLOT", slot, "NODE", target.node_id)
    assert await engine.occupancy(where) == 1  # now through MOVED to the new owner
    assert redirects[-1] == "MovedError"
    renewed = await engine.renew(admitted.lease.lease_id, "ann", ttl=30)
    assert not isinstance(renewed, str), renewed
