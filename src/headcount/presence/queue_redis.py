"""Waiting-room queues in Redis: one Lua script per step, all keys of a room in one slot.

Keys share the hash tag `{wr.<room id>}`, so each script touches one Redis Cluster slot:

* `…:q` — ZSET, the queue: member = visitor, score = `domain.queue.arrival_score`
  (ZRANK answers a position in O(log n))
* `…:a` — ZSET, the active set: member = visitor holding a pass, score = its expiry (ms)
* `…:n` — HASH, visitor → their live admission number (what their pass names)
* `…:j` — HASH, visitor → when they queued (ms), for the wait figures
* `…:s` — HASH: `seq` arrivals, `admitted` admissions, `tokens`/`at` the rate's bucket,
  `status` (`open` or `sold_out`)
* `…:w` — LIST, `<admitted at>:<waited>` of the newest admissions
* `…:l` — ZSET, waiting sockets of a live space's queue → when last seen (ms)

Every script first drops lapsed passes, so a pass nobody renews frees its slot by itself.
The keys carry no expiry: a room's queue lives as long as the room (the ledger keeps its
terms). With Redis persistence (AOF) a Redis restart loses nobody's place; without it
the queue is empty afterwards and visitors rejoin (docs/waiting-room.md).
"""

from __future__ import annotations

from typing import Any

from headcount.domain.errors import ServiceUnavailable
from headcount.domain.queue import LATE_BASE, RoomStatus, RoomTerms, TicketState
from headcount.presence.batching import Script, ScriptBatcher
from headcount.presence.queues import RECENT_ADMISSIONS, Admitted, QueueFigures, Spot
from headcount.presence.redis import _UNREACHABLE, RedisPresence

_KEY_NAMES = ("q", "a", "n", "j", "s", "w", "l")

_PRELUDE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local Q, A, N, J, S, W, L = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local lapsed = redis.call('ZRANGEBYSCORE', A, '-inf', now)
for i = 1, #lapsed do redis.call('HDEL', N, lapsed[i]) end
if #lapsed > 0 then redis.call('ZREMRANGEBYSCORE', A, '-inf', now) end
local status = redis.call('HGET', S, 'status') or 'open'
local function spot(visitor)
  local expires = redis.call('ZSCORE', A, visitor)
  if expires then
    if status == 'sold_out' then return {'sold_out', -1, redis.call('ZCARD', Q), '', 0, now} end
    return {'admitted', -1, redis.call('ZCARD', Q), redis.call('HGET', N, visitor), expires, now}
  end
  local rank = redis.call('ZRANK', Q, visitor)
  if not rank then return {'gone', -1, redis.call('ZCARD', Q), '', 0, now} end
  local state = 'waiting'
  if status == 'sold_out' then state = 'sold_out' end
  return {state, rank, redis.call('ZCARD', Q), '', 0, now}
end
"""

# ARGV: visitor, join (0/1), opens_at ms, order, draw, live (0/1: the visitor is a
# waiting socket, seen now; see _PRUNE).
_SPOT = Script(
    _PRELUDE
    + f"""
local visitor = ARGV[1]
if ARGV[2] == '1' and not redis.call('ZSCORE', A, visitor)
   and not redis.call('ZSCORE', Q, visitor) then
  if status == 'sold_out' then return {{'sold_out', -1, redis.call('ZCARD', Q), '', 0, now}} end
  local arrival = redis.call('HINCRBY', S, 'seq', 1)
  local score = {LATE_BASE} + arrival
  if ARGV[4] == 'random' and now < tonumber(ARGV[3]) then score = tonumber(ARGV[5]) end
  redis.call('ZADD', Q, score, visitor)
  redis.call('HSET', J, visitor, now)
end
if ARGV[6] == '1' and redis.call('ZSCORE', Q, visitor) then redis.call('ZADD', L, now, visitor) end
return spot(visitor)
"""
)

# ARGV: stale ms. Drops waiting sockets at the head not seen for that long (a dropped
# socket, a killed process): only the head can block the others. Returns how many.
_PRUNE = Script(
    _PRELUDE
    + """
local dropped = 0
while dropped < 100 do
  local head = redis.call('ZRANGE', Q, 0, 0)[1]
  if not head then break end
  local seen = redis.call('ZSCORE', L, head)
  if not seen or tonumber(seen) >= now - tonumber(ARGV[1]) then break end
  redis.call('ZREM', Q, head)
  redis.call('ZREM', L, head)
  redis.call('HDEL', J, head)
  dropped = dropped + 1
end
return dropped
"""
)

# ARGV: opens_at ms, active limit, admissions per minute, pass ttl ms, burst.
# Returns {visitor, admission, waited ms, …}.
_ADMIT = Script(
    _PRELUDE
    + f"""
if now < tonumber(ARGV[1]) or status == 'sold_out' then return {{}} end
local burst = tonumber(ARGV[5])
local tokens = tonumber(redis.call('HGET', S, 'tokens') or burst)
local at = tonumber(redis.call('HGET', S, 'at') or now)
if now > at then tokens = tokens + (now - at) * tonumber(ARGV[3]) / 60000 end
if tokens > burst then tokens = burst end
local n = math.min(math.floor(tokens), tonumber(ARGV[2]) - redis.call('ZCARD', A),
                   redis.call('ZCARD', Q))
local out = {{}}
if n > 0 then
  local head = redis.call('ZPOPMIN', Q, n)
  for i = 1, #head, 2 do
    local visitor = head[i]
    local admission = redis.call('HINCRBY', S, 'admitted', 1)
    redis.call('ZADD', A, now + tonumber(ARGV[4]), visitor)
    redis.call('HSET', N, visitor, admission)
    local waited = now - tonumber(redis.call('HGET', J, visitor) or now)
    redis.call('HDEL', J, visitor)
    redis.call('LPUSH', W, now .. ':' .. waited)
    out[#out + 1] = visitor
    out[#out + 1] = tostring(admission)
    out[#out + 1] = waited
  end
  redis.call('LTRIM', W, 0, {RECENT_ADMISSIONS - 1})
  tokens = tokens - n
end
redis.call('HSET', S, 'tokens', tostring(tokens), 'at', now)
return out
"""
)

# ARGV: visitor, admission, pass ttl ms. Returns the new expiry, or 0.
_TOUCH = Script(
    _PRELUDE
    + """
if redis.call('HGET', N, ARGV[1]) ~= ARGV[2] then return 0 end
local expires = now + tonumber(ARGV[3])
redis.call('ZADD', A, 'XX', expires, ARGV[1])
return expires
"""
)

# ARGV: visitor, admission. Returns 1 if that admission was live and is now ended.
_RELEASE = Script(
    _PRELUDE
    + """
if redis.call('HGET', N, ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', N, ARGV[1])
redis.call('ZREM', A, ARGV[1])
return 1
"""
)

# ARGV: visitor. Returns 1 if they were queued.
_LEAVE = Script(
    _PRELUDE
    + """
redis.call('HDEL', J, ARGV[1])
redis.call('ZREM', L, ARGV[1])
return redis.call('ZREM', Q, ARGV[1])
"""
)

# ARGV: status. Returns how many are queued.
_STATUS = Script(
    _PRELUDE
    + """
redis.call('HSET', S, 'status', ARGV[1])
return redis.call('ZCARD', Q)
"""
)

_FIGURES = Script(
    _PRELUDE
    + f"""
return {{redis.call('ZCARD', Q), redis.call('ZCARD', A),
        redis.call('HGET', S, 'admitted') or '0', status,
        redis.call('LRANGE', W, 0, {RECENT_ADMISSIONS - 1}), now}}
"""
)


class RedisQueues:
    """Queues in the presence engine's Redis (one server or a cluster)."""

    def __init__(self, batcher: ScriptBatcher, prefix: str) -> None:
        self._batch = batcher
        self._prefix = prefix

    @classmethod
    def beside(cls, presence: RedisPresence) -> RedisQueues:
        """Through the presence engine's own connections and batching (one pipeline per
        node per loop turn, MOVED/ASK followed on a cluster)."""
        return cls(presence.shared._batch, presence.shared._prefix)

    def _keys(self, terms: RoomTerms) -> list[str]:
        base = f"{self._prefix}:queue:{{wr.{terms.room_id}}}"
        return [f"{base}:{name}" for name in _KEY_NAMES]

    async def _run(self, script: Script, terms: RoomTerms, args: list[Any]) -> Any:
        try:
            return await self._batch.run(script, self._keys(terms), args)
        except _UNREACHABLE as exc:
            raise ServiceUnavailable(
                f"the queue store (Redis) is unreachable: {type(exc).__name__}; try again"
            ) from exc

    async def _spot(
        self, terms: RoomTerms, visitor: str, *, join: bool, draw: int, live: bool
    ) -> Spot:
        args: list[Any] = [
            visitor,
            int(join),
            terms.opens_at_ms,
            terms.order.value,
            draw,
            int(live),
        ]
        reply: list[Any] = await self._run(_SPOT, terms, args)
        state, rank, queued = TicketState(reply[0]), int(reply[1]), int(reply[2])
        admitted = state is TicketState.ADMITTED
        return Spot(
            state,
            rank + 1 if rank >= 0 else None,
            queued,
            admission=str(reply[3]) if admitted else None,
            expires_ms=int(float(reply[4])) if admitted else None,
            now_ms=int(reply[5]),
        )

    async def join(self, terms: RoomTerms, visitor: str, *, draw: int, live: bool = False) -> Spot:
        return await self._spot(terms, visitor, join=True, draw=draw, live=live)

    async def look(self, terms: RoomTerms, visitor: str, *, live: bool = False) -> Spot:
        return await self._spot(terms, visitor, join=False, draw=0, live=live)

    async def prune(self, terms: RoomTerms, *, stale_ms: int) -> int:
        return int(await self._run(_PRUNE, terms, [stale_ms]))

    async def admit(self, terms: RoomTerms) -> list[Admitted]:
        args: list[Any] = [
            terms.opens_at_ms,
            terms.active_limit,
            terms.admit_per_minute,
            terms.pass_ttl_ms,
            terms.burst,
        ]
        flat: list[Any] = await self._run(_ADMIT, terms, args)
        return [
            Admitted(str(flat[i]), str(flat[i + 1]), int(flat[i + 2]))
            for i in range(0, len(flat), 3)
        ]

    async def touch(self, terms: RoomTerms, visitor: str, admission: str) -> int | None:
        args: list[Any] = [visitor, admission, terms.pass_ttl_ms]
        expires = int(await self._run(_TOUCH, terms, args))
        return expires or None

    async def release(self, terms: RoomTerms, visitor: str, admission: str) -> bool:
        return int(await self._run(_RELEASE, terms, [visitor, admission])) == 1

    async def leave(self, terms: RoomTerms, visitor: str) -> bool:
        return int(await self._run(_LEAVE, terms, [visitor])) == 1

    async def set_status(self, terms: RoomTerms, status: RoomStatus) -> int:
        return int(await self._run(_STATUS, terms, [status.value]))

    async def figures(self, terms: RoomTerms) -> QueueFigures:
        reply: list[Any] = await self._run(_FIGURES, terms, [])
        recent = []
        for item in reply[4]:
            at, _, waited = str(item).partition(":")
            recent.append((int(at), int(waited)))
        return QueueFigures(
            queued=int(reply[0]),
            active=int(reply[1]),
            admitted_total=int(reply[2]),
            status=RoomStatus(reply[3]),
            recent=recent,
            now_ms=int(reply[5]),
        )
