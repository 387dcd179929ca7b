"""Values that API processes compute once and share: "who computes, who waits, who reads".

The capacity push channel (capacity/feeds.py) needs one event snapshot per change, or per
tick, for the whole cluster of API processes — not one per watching socket. A shared
value lives under a *scope* (e.g. an event and a tick length) and is wanted for a *mark*:
`<version>:<epoch>`, where the version counts changes announced with `bump=True` and the
epoch is the tick (`now // tick_ms`, on the store's clock, so processes agree). `claim`
answers, in one atomic step:

* the value, if it was already computed for the current mark: read it;
* `owner=True` if nobody is computing it: compute it, then `fill`;
* neither, if someone else holds the (short) computing lock: wait a moment, claim again.

A computer that dies leaves only a lock that lapses after `lock_ms`. On Redis the scope's
state is one hash whose key carries the scope as a hash tag (one Redis Cluster slot); in
process memory (no Redis: one process) the same rules run on a dict.
"""

from __future__ import annotations

import secrets
import time
import weakref
from dataclasses import dataclass
from typing import Any, Protocol

from headcount.presence.base import Presence
from headcount.presence.batching import Script, ScriptBatcher

# How long the shared state of a scope outlives its last use.
_IDLE_MS = 60_000

# KEYS[1] = the scope's hash. ARGV: bump (0/1), tick ms, lock ms, token, idle ms.
# Returns {mark, value or false, owner (0/1)}.
_CLAIM = Script(
    """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[1] == '1' then redis.call('HINCRBY', KEYS[1], 'version', 1) end
local version = redis.call('HGET', KEYS[1], 'version') or '0'
local mark = version .. ':' .. math.floor(now / tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[5]))
if redis.call('HGET', KEYS[1], 'mark') == mark then
  return {mark, redis.call('HGET', KEYS[1], 'value'), 0}
end
if redis.call('HGET', KEYS[1], 'computing') == mark
   and tonumber(redis.call('HGET', KEYS[1], 'until') or '0') > now then
  return {mark, false, 0}
end
redis.call('HSET', KEYS[1], 'computing', mark, 'until', now + tonumber(ARGV[3]), 'by', ARGV[4])
return {mark, false, 1}
"""
)

# KEYS[1] = the scope's hash. ARGV: mark, value, idle ms.
_FILL = Script(
    """
redis.call('HSET', KEYS[1], 'mark', ARGV[1], 'value', ARGV[2], 'until', 0)
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
"""
)


@dataclass(frozen=True, slots=True)
class Claim:
    mark: str
    value: str | None
    owner: bool


class SharedValues(Protocol):
    async def claim(self, scope: str, *, bump: bool, tick_ms: int, lock_ms: int) -> Claim: ...

    async def fill(self, scope: str, mark: str, value: str) -> None: ...


class RedisSharedValues:
    """Shared through the presence engine's Redis (one server or a cluster)."""

    def __init__(self, batcher: ScriptBatcher, prefix: str) -> None:
        self._batch = batcher
        self._prefix = prefix
        self._token = secrets.token_hex(6)  # says which process computes, for debugging

    def _key(self, scope: str) -> list[str]:
        return [f"{self._prefix}:shared:{{{scope}}}"]

    async def claim(self, scope: str, *, bump: bool, tick_ms: int, lock_ms: int) -> Claim:
        args: list[Any] = [int(bump), tick_ms, lock_ms, self._token, _IDLE_MS]
        reply: list[Any] = await self._batch.run(_CLAIM, self._key(scope), args)
        value = reply[1] if isinstance(reply[1], str) else None
        return Claim(str(reply[0]), value, int(reply[2]) == 1)

    async def fill(self, scope: str, mark: str, value: str) -> None:
        await self._batch.run(_FILL, self._key(scope), [mark, value, _IDLE_MS])


@dataclass
class _Scope:
    version: int = 0
    mark: str | None = None
    value: str | None = None
    computing: str | None = None
    until: float = 0.0


class LocalSharedValues:
    """The same rules in this process's memory (the in-process presence engine)."""

    def __init__(self) -> None:
        self._scopes: dict[str, _Scope] = {}

    async def claim(self, scope: str, *, bump: bool, tick_ms: int, lock_ms: int) -> Claim:
        state = self._scopes.setdefault(scope, _Scope())
        now = time.time() * 1000
        if bump:
            state.version += 1
        mark = f"{state.version}:{int(now // tick_ms)}"
        if state.mark == mark:
            return Claim(mark, state.value, False)
        if state.computing == mark and state.until > now:
            return Claim(mark, None, False)
        state.computing, state.until = mark, now + lock_ms
        return Claim(mark, None, True)

    async def fill(self, scope: str, mark: str, value: str) -> None:
        state = self._scopes.setdefault(scope, _Scope())
        state.mark, state.value, state.until = mark, value, 0.0

    def forget(self, scope: str) -> None:
        self._scopes.pop(scope, None)


_LOCAL: weakref.WeakKeyDictionary[Any, LocalSharedValues] = weakref.WeakKeyDictionary()


def shared_values(presence: Presence) -> SharedValues:
    """Where `presence`'s processes share computed values: its Redis, or this process."""
    from headcount.presence.redis import RedisPresence

    if isinstance(presence, RedisPresence):
        return presence.shared
    if presence not in _LOCAL:
        _LOCAL[presence] = LocalSharedValues()
    return _LOCAL[presence]
