"""Redis presence: leases and the places they hold, admitted by one Lua script.

Keys of one resource share a hash tag, `{<kind>.<id>}`, so every script touches one
Redis Cluster slot:

* `<prefix>:presence:{r}:leases` — ZSET, member = lease id, score = expiry (ms, Redis clock)
* `<prefix>:presence:{r}:holders` — HASH, lease id → holder (the user who may renew/leave)
* `<prefix>:presence:{r}:places` — ZSET, member = place (`u:<holder>` when the space counts
  users, `c:<lease id>` when it counts connections), score = while a lease holds it, at
  least that lease's expiry; once none does, the end of its grace
* `<prefix>:presence:{r}:idle` — ZSET of the places held in grace, ordered by holder
* `<prefix>:presence:{r}:meta` — HASH, per place: live leases, holder, grace (ms)
* `<prefix>:presence:{r}:closed` — flag set when an organizer closes the resource

Every script starts by dropping expired leases (a place losing its last one starts its
grace) and places whose grace is over, and reads the time from Redis itself (`TIME`), so
API processes with skewed clocks still agree on who is live. Admission is "drop what
lapsed, give the holder back their own place or compare the places with the limit, add"
in one script: Redis runs scripts one at a time, so no two admissions can both see the
last free place, and no newcomer can see a place held in grace as free. The keys expire
a minute after their newest lease's expiry plus its grace, so abandoned resources leave
nothing behind.

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
    AskError,
    BusyLoadingError,
    ClusterError,
    ReadOnlyError,
    RedisClusterException,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from headcount.domain.errors import ServiceUnavailable
from headcount.presence import base
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
    # A slot still migrating, or moving again, after every resend (MAX_REDIRECTS).
    TryAgainError,
    AskError,
)
CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
# Connections per Redis node. Batching sends one pipeline per node per loop turn, so a
# process rarely needs more than a few; the cluster client refuses (503) past this.
MAX_CONNECTIONS = 64
# How long keys outlive their newest lease (ms): enough for a late heartbeat to find
# "expired" rather than nothing, small enough that dead resources vanish.
_KEY_GRACE_MS = 60_000
_CLOSED_FLAG_SECONDS = 7 * 24 * 3600
_KEY_NAMES = ("leases", "holders", "places", "idle", "meta", "closed")
# The admit script's `how` → `Place`.
_HOW = {0: base.Place.NEW, 1: base.Place.RESUMED, 2: base.Place.SHARED}

# KEYS: 1 leases ZSET (lease id → expiry ms), 2 holders HASH (lease id → holder),
# 3 places ZSET (place → ms: while a lease holds it, at least that lease's expiry; once
# none does, when its grace ends), 4 idle ZSET (the places held in grace, by holder),
# 5 meta HASH (`n|p` live leases of place p, `h|p` its holder, `g|p` its grace in ms),
# 6 closed flag. Sets `now` (ms), drops expired leases (a place losing its last one starts
# its grace from that lease's expiry), then drops places whose grace is over.
_PRELUDE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local LEASES, HOLDERS, PLACES, IDLE, META = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local function user_place(holder) return 'u:' .. holder end
local function connection_place(lease) return 'c:' .. lease end
-- Members of IDLE are '<length>:<holder><place>' (all scored 0): one ZRANGEBYLEX finds a
-- holder's places in grace, and no holder's prefix is another holder's.
local function idle_prefix(holder) return #holder .. ':' .. holder end
local function place_of(lease, holder)
  local own = connection_place(lease)
  if redis.call('ZSCORE', PLACES, own) then return own end
  return user_place(holder)
end
local function forget(place, holder)
  redis.call('ZREM', PLACES, place)
  redis.call('ZREM', IDLE, idle_prefix(holder) .. place)
  redis.call('HDEL', META, 'n|' .. place, 'h|' .. place, 'g|' .. place)
end
-- A live lease is gone without a leave at `at` (ms): if it was its place's last, the
-- place is held for its holder until its grace has passed.
local function disconnect(lease, holder, at)
  local place = place_of(lease, holder)
  if not redis.call('ZSCORE', PLACES, place) then return end
  if redis.call('HINCRBY', META, 'n|' .. place, -1) <= 0 then
    local grace = tonumber(redis.call('HGET', META, 'g|' .. place) or '0')
    redis.call('ZADD', PLACES, at + grace, place)
    redis.call('ZADD', IDLE, 0, idle_prefix(holder) .. place)
    -- A new IDLE key (made here, maybe by a read) lives as long as PLACES.
    local keep = redis.call('PTTL', PLACES)
    if keep > 0 and redis.call('PTTL', IDLE) < 0 then redis.call('PEXPIRE', IDLE, keep) end
  end
end
local expired = redis.call('ZRANGEBYSCORE', LEASES, '-inf', now, 'WITHSCORES')
if #expired > 0 then
  for i = 1, #expired, 2 do
    local holder = redis.call('HGET', HOLDERS, expired[i])
    if holder then disconnect(expired[i], holder, tonumber(expired[i + 1])) end
    redis.call('HDEL', HOLDERS, expired[i])
  end
  redis.call('ZREMRANGEBYSCORE', LEASES, '-inf', now)
end
local lapsed = redis.call('ZRANGEBYSCORE', PLACES, '-inf', now)
for i = 1, #lapsed do
  forget(lapsed[i], redis.call('HGET', META, 'h|' .. lapsed[i]) or '')
end
-- Keys outlive what they hold (`ms` from now) by the key grace (ARGV[#ARGV]); they are
-- extended by twice that at once, so most calls only read two TTLs. A key is never
-- shortened (several graces may share a resource).
local function keep_keys(ms)
  local wanted = ms + tonumber(ARGV[#ARGV])
  if redis.call('PTTL', LEASES) >= wanted and redis.call('PTTL', PLACES) >= wanted then
    return
  end
  for i = 1, 5 do
    if redis.call('PTTL', KEYS[i]) < wanted then
      redis.call('PEXPIRE', KEYS[i], wanted + tonumber(ARGV[#ARGV]))
    end
  end
end
"""

# ARGV: ttl_ms, limit (-1 = none), lease id, holder, grace_ms, count, key grace.
# Returns {1, places, expires, how, in grace} admitted (how: 0 a new place, 1 the
# holder's place taken back from grace, 2 shared with the holder's live lease) ·
# {0, places, in grace} full · {-1, places, in grace} closed.
# The holder's own place is looked for before the limit: it is theirs, full or not.
_ADMIT = (
    _PRELUDE
    + """
local ttl, limit, lease, holder = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4]
local grace = tonumber(ARGV[5])
if redis.call('EXISTS', KEYS[6]) == 1 then
  return {-1, redis.call('ZCARD', PLACES), redis.call('ZCARD', IDLE)}
end
local taken = redis.call('ZCARD', PLACES)
local place, how = nil, 0
if ARGV[6] == 'users' then
  local own = user_place(holder)
  if redis.call('ZSCORE', PLACES, own) then
    place = own
    if tonumber(redis.call('HGET', META, 'n|' .. own) or '0') > 0 then how = 2 else how = 1 end
  end
else
  local prefix = idle_prefix(holder)
  local held = redis.call('ZRANGEBYLEX', IDLE, '[' .. prefix, '[' .. prefix .. '\\255',
                          'LIMIT', 0, 1)
  if #held > 0 then
    -- The held place is renamed after the lease taking it back.
    forget(string.sub(held[1], #prefix + 1), holder)
    place, how = connection_place(lease), 1
  end
end
if not place then
  if limit >= 0 and taken >= limit then return {0, taken, redis.call('ZCARD', IDLE)} end
  if ARGV[6] == 'users' then place = user_place(holder) else place = connection_place(lease) end
  taken = taken + 1
end
if how == 1 then redis.call('ZREM', IDLE, idle_prefix(holder) .. place) end
local expires = now + ttl
redis.call('ZADD', LEASES, expires, lease)
redis.call('HSET', HOLDERS, lease, holder)
redis.call('ZADD', PLACES, 'GT', expires, place)
redis.call('HINCRBY', META, 'n|' .. place, 1)
redis.call('HSET', META, 'h|' .. place, holder, 'g|' .. place, grace)
keep_keys(ttl + grace)
return {1, taken, expires, how, redis.call('ZCARD', IDLE)}
"""
)

# ARGV: ttl_ms, lease id, holder, key grace. Returns {1, expires} · {0} gone · {-1} not holder.
_RENEW = (
    _PRELUDE
    + """
local ttl, lease, holder = tonumber(ARGV[1]), ARGV[2], ARGV[3]
if not redis.call('ZSCORE', LEASES, lease) then return {0} end
if redis.call('HGET', HOLDERS, lease) ~= holder then return {-1} end
local expires = now + ttl
redis.call('ZADD', LEASES, 'XX', expires, lease)
local place = place_of(lease, holder)
redis.call('ZADD', PLACES, 'XX', 'GT', expires, place)
keep_keys(ttl + tonumber(redis.call('HGET', META, 'g|' .. place) or '0'))
return {1, expires}
"""
)

# ARGV: lease id, holder, key grace. Returns {1, expires} left (the place is freed unless
# another live lease holds it: a leave starts no grace) · {2} the lease had lapsed and its
# place, held in grace for the holder, is freed · {0} gone · {-1} not holder.
_RELEASE = (
    _PRELUDE
    + """
local lease, holder = ARGV[1], ARGV[2]
local score = redis.call('ZSCORE', LEASES, lease)
if score then
  if redis.call('HGET', HOLDERS, lease) ~= holder then return {-1} end
  local place = place_of(lease, holder)
  redis.call('ZREM', LEASES, lease)
  redis.call('HDEL', HOLDERS, lease)
  if redis.call('HINCRBY', META, 'n|' .. place, -1) <= 0 then forget(place, holder) end
  return {1, score}
end
for _, place in ipairs({connection_place(lease), user_place(holder)}) do
  if redis.call('ZSCORE', IDLE, idle_prefix(holder) .. place) then
    forget(place, holder)
    return {2}
  end
end
return {0}
"""
)

# ARGV: lease id, holder, key grace. Returns {1, expires} · {0} gone · {-1} not holder.
_DROP = (
    _PRELUDE
    + """
local lease, holder = ARGV[1], ARGV[2]
local score = redis.call('ZSCORE', LEASES, lease)
if not score then return {0} end
if redis.call('HGET', HOLDERS, lease) ~= holder then return {-1} end
redis.call('ZREM', LEASES, lease)
redis.call('HDEL', HOLDERS, lease)
disconnect(lease, holder, now)
keep_keys(tonumber(redis.call('HGET', META, 'g|' .. place_of(lease, holder)) or '0'))
return {1, score}
"""
)

# ARGV: key grace. Returns {places, in grace, live leases}.
_COUNT = (
    _PRELUDE
    + """
return {redis.call('ZCARD', PLACES), redis.call('ZCARD', IDLE), redis.call('ZCARD', LEASES)}
"""
)

# ARGV: key grace. Returns {lease id, expires, holder, …}.
_LIST = (
    _PRELUDE
    + """
local rows = redis.call('ZRANGE', LEASES, 0, -1, 'WITHSCORES')
local out = {}
for i = 1, #rows, 2 do
  out[#out + 1] = rows[i]
  out[#out + 1] = rows[i + 1]
  out[#out + 1] = redis.call('HGET', HOLDERS, rows[i]) or ''
end
return out
"""
)

# ARGV: flag seconds, key grace. Evicts every lease and place (grace or not); returns how
# many places were taken.
_CLOSE = (
    _PRELUDE
    + """
local count = redis.call('ZCARD', PLACES)
redis.call('DEL', LEASES, HOLDERS, PLACES, IDLE, META)
redis.call('SET', KEYS[6], '1', 'EX', tonumber(ARGV[1]))
return count
"""
)


class RedisPresence(base.Presence):
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
        self._drop = Script(_DROP)
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

    def _keys(self, resource: base.Resource) -> list[str]:
        """Every script gets all six keys of its resource, in this order (see _PRELUDE)."""
        base = f"{self._prefix}:presence:{{{resource.key}}}"
        return [f"{base}:{name}" for name in _KEY_NAMES]

    async def _call(self, work: Callable[[], Awaitable[T]]) -> T:
        try:
            return await work()
        except _UNREACHABLE as exc:
            raise ServiceUnavailable(
                f"the presence store (Redis) is unreachable: {type(exc).__name__}; try again"
            ) from exc

    async def claim(self, claim: base.Claim) -> base.Admission:
        resource, holder = claim.resource, claim.holder
        lease_id = base.new_lease_id(resource)
        args: list[Arg] = [
            _ms(claim.ttl),
            -1 if claim.limit is None else claim.limit,
            lease_id,
            holder,
            _grace_ms(claim.grace),
            claim.count.value,
            _KEY_GRACE_MS,
        ]
        keys = self._keys(resource)
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
        status, taken = int(reply[0]), int(reply[1])
        if status == 1:
            lease = base.Lease(lease_id, resource, holder, int(reply[2]) / 1000)
            return base.Admission(lease, taken, place=_HOW[int(reply[3])], in_grace=int(reply[4]))
        return base.Admission(None, taken, closed=status == -1, in_grace=int(reply[2]))

    def _give_back(self, lease_id: str, holder: str) -> None:
        async def release() -> None:
            with contextlib.suppress(Exception):
                await self.release(lease_id, holder)

        task = asyncio.ensure_future(release())
        self._giving_back.add(task)
        task.add_done_callback(self._giving_back.discard)

    async def renew(self, lease_id: str, holder: str, *, ttl: float) -> base.Lease | str:
        resource = base.parse_lease_id(lease_id)
        if resource is None:
            return base.LeaseState.GONE
        args: list[Arg] = [_ms(ttl), lease_id, holder, _KEY_GRACE_MS]
        keys = self._keys(resource)
        reply: list[Any] = await self._call(lambda: self._batch.run(self._renew, keys, args))
        return _lease_or_state(reply, lease_id, resource, holder)

    async def release(self, lease_id: str, holder: str) -> base.Lease | str:
        return await self._end(self._release, lease_id, holder)

    async def drop(self, lease_id: str, holder: str) -> base.Lease | str:
        return await self._end(self._drop, lease_id, holder)

    async def _end(self, script: Script, lease_id: str, holder: str) -> base.Lease | str:
        resource = base.parse_lease_id(lease_id)
        if resource is None:
            return base.LeaseState.GONE
        args: list[Arg] = [lease_id, holder, _KEY_GRACE_MS]
        keys = self._keys(resource)
        reply: list[Any] = await self._call(lambda: self._batch.run(script, keys, args))
        return _lease_or_state(reply, lease_id, resource, holder)

    async def occupancy(self, resource: base.Resource) -> int:
        return (await self.tallies([resource]))[resource].places

    async def occupancies(self, resources: list[base.Resource]) -> dict[base.Resource, int]:
        return {r: tally.places for r, tally in (await self.tallies(resources)).items()}

    async def tallies(self, resources: list[base.Resource]) -> dict[base.Resource, base.Tally]:
        if not resources:
            return {}
        if len(resources) == 1:
            keys = self._keys(resources[0])
            one: list[Any] = await self._call(
                lambda: self._batch.run(self._count, keys, [_KEY_GRACE_MS])
            )
            return {resources[0]: _tally(one)}

        async def run() -> list[Any]:
            # Queued in one loop turn: one pipeline per node that owns some of them.
            return await asyncio.gather(
                *(self._batch.run(self._count, self._keys(r), [_KEY_GRACE_MS]) for r in resources)
            )

        replies = await self._call(run)
        return {r: _tally(reply) for r, reply in zip(resources, replies, strict=True)}

    async def leases(self, resource: base.Resource) -> list[base.Lease]:
        keys = self._keys(resource)
        flat: list[Any] = await self._call(
            lambda: self._batch.run(self._list, keys, [_KEY_GRACE_MS])
        )
        return [
            base.Lease(flat[i], resource, flat[i + 2], int(float(flat[i + 1])) / 1000)
            for i in range(0, len(flat), 3)
        ]

    async def close_resource(self, resource: base.Resource) -> int:
        keys = self._keys(resource)
        args: list[Arg] = [_CLOSED_FLAG_SECONDS, _KEY_GRACE_MS]
        evicted: int = await self._call(lambda: self._batch.run(self._close, keys, args))
        return int(evicted)

    async def reopen_resource(self, resource: base.Resource) -> None:
        flag = self._keys(resource)[-1]
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


def _grace_ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))


def _tally(reply: list[Any]) -> base.Tally:
    return base.Tally(places=int(reply[0]), in_grace=int(reply[1]), connections=int(reply[2]))


def _lease_or_state(
    reply: list[Any], lease_id: str, resource: base.Resource, holder: str
) -> base.Lease | str:
    status = int(reply[0])
    if status == 1:
        return base.Lease(lease_id, resource, holder, int(float(reply[1])) / 1000)
    if status == 2:
        return base.LeaseState.RELINQUISHED
    return base.LeaseState.NOT_HOLDER if status == -1 else base.LeaseState.GONE
