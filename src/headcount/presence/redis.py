"""Redis presence: leases in a sorted set per resource, admitted by one Lua script.

Keys of one resource share a hash tag, `{<kind>.<id>}`, so every script touches one
Redis Cluster slot:

* `<prefix>:presence:{r}:leases` — ZSET, member = lease id, score = expiry (ms, Redis clock)
* `<prefix>:presence:{r}:holders` — HASH, lease id → holder (the user who may renew/leave)
* `<prefix>:presence:{r}:closed` — flag set when an organizer closes the resource

Every script starts by dropping expired leases and reads the time from Redis itself
(`TIME`), so API processes with skewed clocks still agree on who is live. Admission is
"drop expired, count, compare with the limit, add" in one script: Redis runs scripts one
at a time, so no two admissions can both see the last free place. The keys expire a
minute after their newest lease, so abandoned resources leave nothing behind.

Failures to reach Redis become `ServiceUnavailable` (503). A command is retried once on a
fresh connection (pooled sockets die with a Redis restart); a lost reply to an admission
can at worst leave one lease nobody holds, which expires within the TTL — the limit is
never exceeded.

`redis+cluster://host:port` (or `rediss+cluster://`) names a Redis Cluster by any of its
nodes: the same scripts run unchanged, each on the master that owns its resource's slot
(`presence/batching.py` routes, follows MOVED/ASK and reloads scripts a new master lacks).
With `HEADCOUNT_REDIS_REPLICA_ACK_MS` set, an admission is answered only once a replica
confirmed it, so a failover cannot forget a place it gave (the failover guard, ibid.).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import (
    BusyLoadingError,
    ClusterError,
    ReadOnlyError,
    RedisClusterException,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from headcount.domain.errors import ServiceUnavailable
from headcount.presence.base import (
    Admission,
    Lease,
    LeaseState,
    Resource,
    new_lease_id,
    parse_lease_id,
)
from headcount.presence.batching import (
    ClusterTransport,
    NotReplicated,
    ReplicaAck,
    Script,
    ScriptBatcher,
    SingleTransport,
    Transport,
)
from headcount.presence.shared import RedisSharedValues

T = TypeVar("T")
Arg = str | int | float

_UNREACHABLE = (
    RedisConnectionError,
    RedisTimeoutError,
    BusyLoadingError,
    ReadOnlyError,
    OSError,
    # A cluster that is failing over, has uncovered slots, or whose nodes are all down.
    ClusterError,
    RedisClusterException,
)
CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
# Connections per Redis node. Batching sends one pipeline per node per loop turn, so a
# process rarely needs more than a few; the cluster client refuses (503) past this.
MAX_CONNECTIONS = 64
# How long keys outlive their newest lease (ms): enough for a late heartbeat to find
# "expired" rather than nothing, small enough that dead resources vanish.
_KEY_GRACE_MS = 60_000
_CLOSED_FLAG_SECONDS = 7 * 24 * 3600

# KEYS[1] = leases zset, KEYS[2] = holders hash. Sets `now` (ms) and drops expired leases.
_PRELUDE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
if #expired > 0 then
  for i = 1, #expired, 500 do
    redis.call('HDEL', KEYS[2], unpack(expired, i, math.min(i + 499, #expired)))
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
end
local function keep_keys(ttl_ms)
  local wanted = ttl_ms + tonumber(ARGV[#ARGV])
  if redis.call('PTTL', KEYS[1]) < wanted then
    redis.call('PEXPIRE', KEYS[1], wanted)
    redis.call('PEXPIRE', KEYS[2], wanted)
  end
end
"""

# KEYS[3] = closed flag. ARGV: ttl_ms, limit (-1 = none), lease id, holder, grace.
# Returns {1, count, expires} admitted · {0, count} full · {-1, count} closed.
_ADMIT = (
    _PRELUDE
    + """
local count = redis.call('ZCARD', KEYS[1])
if redis.call('EXISTS', KEYS[3]) == 1 then return {-1, count} end
local limit = tonumber(ARGV[2])
if limit >= 0 and count >= limit then return {0, count} end
local expires = now + tonumber(ARGV[1])
redis.call('ZADD', KEYS[1], expires, ARGV[3])
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
keep_keys(tonumber(ARGV[1]))
return {1, count + 1, expires}
"""
)

# ARGV: ttl_ms, lease id, holder, grace. Returns {1, expires} · {0} gone · {-1} not holder.
_RENEW = (
    _PRELUDE
    + """
if not redis.call('ZSCORE', KEYS[1], ARGV[2]) then return {0} end
if redis.call('HGET', KEYS[2], ARGV[2]) ~= ARGV[3] then return {-1} end
local expires = now + tonumber(ARGV[1])
redis.call('ZADD', KEYS[1], 'XX', expires, ARGV[2])
keep_keys(tonumber(ARGV[1]))
return {1, expires}
"""
)

# ARGV: lease id, holder, grace. Returns {1, expires} · {0} gone · {-1} not holder.
_RELEASE = (
    _PRELUDE
    + """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score then return {0} end
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return {-1} end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return {1, score}
"""
)

# ARGV: grace. Returns the live count.
_COUNT = _PRELUDE + "\nreturn redis.call('ZCARD', KEYS[1])\n"

# ARGV: grace. Returns {lease id, expires, holder, …}.
_LIST = (
    _PRELUDE
    + """
local rows = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local out = {}
for i = 1, #rows, 2 do
  out[#out + 1] = rows[i]
  out[#out + 1] = rows[i + 1]
  out[#out + 1] = redis.call('HGET', KEYS[2], rows[i]) or ''
end
return out
"""
)

# KEYS[3] = closed flag. ARGV: flag seconds, grace. Returns how many live leases were evicted.
_CLOSE = (
    _PRELUDE
    + """
local count = redis.call('ZCARD', KEYS[1])
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('SET', KEYS[3], '1', 'EX', tonumber(ARGV[1]))
return count
"""
)


class RedisPresence:
    name = "redis"

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "hc",
        max_connections: int = MAX_CONNECTIONS,
        replica_ack: ReplicaAck | None = None,
    ) -> None:
        if "{" in prefix or "}" in prefix:
            raise ValueError("the Redis key prefix must not contain braces (hash tags)")
        self._redis, transport = _connect(url, max_connections)
        self._prefix = prefix
        self._admit = Script(_ADMIT)
        self._renew = Script(_RENEW)
        self._release = Script(_RELEASE)
        self._count = Script(_COUNT)
        self._list = Script(_LIST)
        self._close = Script(_CLOSE)
        # Calls of one loop turn share a pipeline per node, and admissions wait for a
        # replica when the failover guard is on.
        self._batch = ScriptBatcher(transport, ack=replica_ack)
        self._giving_back: set[asyncio.Task[None]] = set()
        # Values API processes compute once and share (presence/shared.py).
        self.shared = RedisSharedValues(self._batch, prefix)

    @property
    def clustered(self) -> bool:
        return isinstance(self._redis, RedisCluster)

    def _keys(self, resource: Resource, *, flag: bool = False) -> list[str]:
        base = f"{self._prefix}:presence:{{{resource.key}}}"
        keys = [f"{base}:leases", f"{base}:holders"]
        if flag:
            keys.append(f"{base}:closed")
        return keys

    async def _call(self, work: Callable[[], Awaitable[T]]) -> T:
        try:
            return await work()
        except _UNREACHABLE as exc:
            raise ServiceUnavailable(
                f"the presence store (Redis) is unreachable: {type(exc).__name__}; try again"
            ) from exc

    async def admit(
        self, resource: Resource, holder: str, *, limit: int | None, ttl: float
    ) -> Admission:
        lease_id = new_lease_id(resource)
        args: list[Arg] = [
            _ms(ttl),
            -1 if limit is None else limit,
            lease_id,
            holder,
            _KEY_GRACE_MS,
        ]
        keys = self._keys(resource, flag=True)
        try:
            reply: list[Any] = await self._call(
                lambda: self._batch.run(self._admit, keys, args, acknowledged=True)
            )
        except NotReplicated as unconfirmed:
            reply = unconfirmed.reply  # a refusal loses nothing if forgotten: answer it
            if int(reply[0]) == 1:
                # Admitted on the master only: a failover now would forget it and give the
                # place again. Refuse, and give the place back if the master still answers
                # (else the lease lapses by itself within the TTL).
                self._give_back(lease_id, holder)
                raise ServiceUnavailable(
                    "the presence store could not confirm the admission on a replica "
                    "in time; try again"
                ) from unconfirmed
        status, count = int(reply[0]), int(reply[1])
        if status == 1:
            return Admission(Lease(lease_id, resource, holder, int(reply[2]) / 1000), count)
        return Admission(None, count, closed=status == -1)

    def _give_back(self, lease_id: str, holder: str) -> None:
        async def release() -> None:
            with contextlib.suppress(Exception):
                await self.release(lease_id, holder)

        task = asyncio.ensure_future(release())
        self._giving_back.add(task)
        task.add_done_callback(self._giving_back.discard)

    async def renew(self, lease_id: str, holder: str, *, ttl: float) -> Lease | str:
        resource = parse_lease_id(lease_id)
        if resource is None:
            return LeaseState.GONE
        args: list[Arg] = [_ms(ttl), lease_id, holder, _KEY_GRACE_MS]
        keys = self._keys(resource)
        reply: list[Any] = await self._call(lambda: self._batch.run(self._renew, keys, args))
        return _lease_or_state(reply, lease_id, resource, holder)

    async def release(self, lease_id: str, holder: str) -> Lease | str:
        resource = parse_lease_id(lease_id)
        if resource is None:
            return LeaseState.GONE
        args: list[Arg] = [lease_id, holder, _KEY_GRACE_MS]
        keys = self._keys(resource)
        reply: list[Any] = await self._call(lambda: self._batch.run(self._release, keys, args))
        return _lease_or_state(reply, lease_id, resource, holder)

    async def occupancy(self, resource: Resource) -> int:
        keys = self._keys(resource)
        count: int = await self._call(lambda: self._batch.run(self._count, keys, [_KEY_GRACE_MS]))
        return int(count)

    async def occupancies(self, resources: list[Resource]) -> dict[Resource, int]:
        if not resources:
            return {}

        async def run() -> list[Any]:
            # Queued in one loop turn: one pipeline per node that owns some of them.
            return await asyncio.gather(
                *(self._batch.run(self._count, self._keys(r), [_KEY_GRACE_MS]) for r in resources)
            )

        counts = await self._call(run)
        return {r: int(c) for r, c in zip(resources, counts, strict=True)}

    async def leases(self, resource: Resource) -> list[Lease]:
        keys = self._keys(resource)
        flat: list[Any] = await self._call(
            lambda: self._batch.run(self._list, keys, [_KEY_GRACE_MS])
        )
        return [
            Lease(flat[i], resource, flat[i + 2], int(float(flat[i + 1])) / 1000)
            for i in range(0, len(flat), 3)
        ]

    async def close_resource(self, resource: Resource) -> int:
        keys = self._keys(resource, flag=True)
        args: list[Arg] = [_CLOSED_FLAG_SECONDS, _KEY_GRACE_MS]
        evicted: int = await self._call(lambda: self._batch.run(self._close, keys, args))
        return int(evicted)

    async def reopen_resource(self, resource: Resource) -> None:
        flag = self._keys(resource, flag=True)[2]
        await self._call(lambda: self._redis.delete(flag))

    async def ping(self) -> None:
        if isinstance(self._redis, RedisCluster):
            # Every master must answer (each owns slots); a dead replica is no outage.
            await self._call(lambda: self._redis.ping(target_nodes=RedisCluster.PRIMARIES))
            return
        await self._call(self._redis.ping)

    async def close(self) -> None:
        if isinstance(self._redis, RedisCluster):
            await self._redis.aclose()
        else:
            await self._redis.aclose(close_connection_pool=True)


def _connect(url: str, max_connections: int) -> tuple[aioredis.Redis | RedisCluster, Transport]:
    """The client for `url` and how the batcher reaches it (one server, or a cluster)."""
    scheme, sep, rest = url.partition("://")
    # Fail fast: a dead node costs ~1 s to notice, a stalled one 2 s; one retry on a fresh
    # connection (pooled sockets die with a restart), then the caller answers 503.
    options: dict[str, Any] = {
        "socket_timeout": 2,
        "socket_connect_timeout": 1,
        "retry": Retry(NoBackoff(), 1),
        "decode_responses": True,
    }
    if sep and scheme.lower() in CLUSTER_SCHEMES:
        cluster = RedisCluster.from_url(
            f"{CLUSTER_SCHEMES[scheme.lower()]}://{rest}",
            max_connections=max_connections,
            # Sending a call to a node that no longer owns its slot costs one MOVED and
            # one resend; rereading the whole layout on every one would cost more.
            reinitialize_steps=25,
            **options,
        )
        return cluster, ClusterTransport(cluster, max_connections=max_connections)
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=5, **options
    )
    client = aioredis.Redis(connection_pool=pool)
    return client, SingleTransport(client)


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _lease_or_state(
    reply: list[Any], lease_id: str, resource: Resource, holder: str
) -> Lease | str:
    status = int(reply[0])
    if status == 1:
        return Lease(lease_id, resource, holder, int(float(reply[1])) / 1000)
    return LeaseState.NOT_HOLDER if status == -1 else LeaseState.GONE
