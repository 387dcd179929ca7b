"""Script calls made in the same event-loop turn travel to Redis as one pipeline per node.

A join or heartbeat is one Lua script call, and Redis runs one in ~20 µs; redis-py spends
several times that per call in Python (connection checkout, packing, a socket write and
read, timeouts). With thousands of viewers renewing, the process ran out of CPU long
before Redis did (bench/RESULTS.md). Calls queued during one turn of the loop are sent
together, non-transactionally: Redis still runs each script atomically and on its own,
so admission stays exact; only the Python overhead is shared.

**Where a call goes.** On one Redis every call of a turn shares one pipeline. On a Redis
Cluster (`ClusterTransport`) the calls are grouped by the master that owns their hash
slot (every script's keys share one `{kind.id}` tag, so a call has exactly one owner) and
each group is one pipeline on that master. A call answered `MOVED` (the slot moved, or a
replica took over after a failover) updates the slot map and is sent again on its own to
the new owner; `ASK` (a slot being migrated) is sent once to the target after `ASKING`;
`TRYAGAIN` waits 50 ms; `NOSCRIPT` (a restarted or newly promoted node has an empty
script cache) is sent again as `EVAL` with the script's body, which also loads it. A node
that cannot be reached fails its group's calls (each caller answers 503) and makes the
next batch rediscover the cluster's layout.

**The failover guard** (`ReplicaAck`, `HEADCOUNT_REDIS_REPLICA_ACK_MS`). Redis replicates
asynchronously: a lease written on a master that dies before its replica copied it is
lost when the replica takes over, and its place can be given to someone else — two people
told yes for one place. With the guard on, a pipeline holding an *acknowledged* call (an
admission) ends with `WAIT <acks> <ms>` on the same connection, which returns how many
replicas confirmed every write of that connection so far. Fewer than asked: the calls'
replies are not safe to act on and each becomes `NotReplicated` (the caller answers 503
and lets the lease go). Refusals and reads need no guard: losing them loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Hashable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, PipelineCommand, RedisCluster
from redis.exceptions import (
    AskError,
    ClusterDownError,
    MovedError,
    NoScriptError,
    RedisClusterException,
    RedisError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

# Calls per pipeline: bounds the size of one write and of one burst of replies.
MAX_BATCH = 256
# Redirections one call may follow before it fails (a slot moving twice in a row is rare;
# more means the cluster is reconfiguring and the caller is better off with a 503).
MAX_REDIRECTS = 5
# At most one rediscovery of the cluster's layout per this many seconds per process.
REDISCOVER_EVERY = 0.2

Command = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Script:
    """A Lua script, called by its SHA1 (`EVALSHA`) and, when a node lacks it, by body."""

    body: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        digest = hashlib.sha1(self.body.encode(), usedforsecurity=False).hexdigest()
        object.__setattr__(self, "sha", digest)


@dataclass(frozen=True, slots=True)
class ReplicaAck:
    """The failover guard: `WAIT replicas timeout_ms` after every admitting pipeline."""

    replicas: int
    timeout_ms: int


class NotReplicated(Exception):
    """The call ran on the master, but no replica confirmed it within the guard's bound.

    `reply` is what the script answered; the caller must not act on it (a failover now
    would forget the write) and should undo what it can.
    """

    def __init__(self, reply: Any, acks: int | None) -> None:
        super().__init__(f"the write was confirmed by {acks or 0} replica(s) in time")
        self.reply = reply
        self.acks = acks


@dataclass(slots=True)
class _Call:
    script: Script
    keys: list[str]
    args: list[Any]
    acknowledged: bool
    future: asyncio.Future[Any]
    resent: int = 0  # times redirected or reloaded so far

    def command(self) -> Command:
        return ("EVALSHA", self.script.sha, len(self.keys), *self.keys, *self.args)


class Transport(Protocol):
    """How pipelines reach Redis: one server, or the owner of each call's slot."""

    async def ready(self) -> None:
        """Before routing: know the layout (a cluster discovers its slots here)."""

    def route(self, keys: Sequence[str]) -> Hashable:
        """Which node serves these keys (all in one slot); calls with equal routes share
        a pipeline."""
        ...

    async def pipeline(self, route: Hashable, commands: list[Command]) -> list[Any]:
        """Send `commands` on one connection of `route`, in order; each reply or its error.

        Raises when the node cannot be reached at all.
        """
        ...

    async def redirected(self, error: AskError) -> Hashable:
        """Where a `MOVED`/`ASK` answer sends the call next (MOVED also fixes the map)."""
        ...

    async def unreachable(self, route: Hashable, error: BaseException) -> None:
        """A node failed: forget what we believed about the layout."""

    def slot(self, route: Hashable) -> AbstractAsyncContextManager[Any]:
        """Held while a pipeline uses one of `route`'s connections (bounds them)."""
        ...


class SingleTransport:
    """One Redis server (or a proxy that looks like one)."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client

    async def ready(self) -> None:
        return None

    def route(self, keys: Sequence[str]) -> Hashable:
        return None

    async def pipeline(self, route: Hashable, commands: list[Command]) -> list[Any]:
        if len(commands) == 1:  # a lone call goes straight through: no pipeline object
            try:
                reply = await self.client.execute_command(*commands[0])  # type: ignore[no-untyped-call]
                return [reply]
            except ResponseError as exc:
                return [exc]
        pipe = self.client.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        replies: list[Any] = await pipe.execute(raise_on_error=False)
        return replies

    async def redirected(self, error: AskError) -> Hashable:
        raise error  # one server never redirects; a proxy that does is misconfigured

    async def unreachable(self, route: Hashable, error: BaseException) -> None:
        return None  # the pool reconnects by itself

    def slot(self, route: Hashable) -> AbstractAsyncContextManager[Any]:
        return contextlib.nullcontext()  # the blocking pool bounds and queues by itself


class ClusterTransport:
    """A Redis Cluster through redis-py's cluster client: its slot map and node pools.

    The client's own pipeline cannot be used: it may send a redirected call on another
    connection than the `WAIT` that must follow it, and it retries whole pipelines.
    """

    def __init__(self, client: RedisCluster, *, max_connections: int) -> None:
        self.client = client
        # The cluster client refuses outright past a node's connection limit; pipelines
        # queue here instead, like the single-server blocking pool.
        self._connections = max_connections
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._discovering = asyncio.Lock()
        self._discovered_at = 0.0
        self._stale = False

    async def ready(self) -> None:
        await self.client.initialize()
        if self._stale:
            await self._rediscover()

    def route(self, keys: Sequence[str]) -> Hashable:
        slot = self.client.keyslot(keys[0])
        return self.client.nodes_manager.get_node_from_slot(slot)

    async def pipeline(self, route: Hashable, commands: list[Command]) -> list[Any]:
        assert isinstance(route, ClusterNode)
        stack = [PipelineCommand(n, *command) for n, command in enumerate(commands)]
        await route.execute_pipeline(stack)
        return [command.result for command in stack]

    async def redirected(self, error: AskError) -> Hashable:
        if isinstance(error, MovedError):
            await self.client.nodes_manager.move_slot(error)
        node = self.client.nodes_manager.get_node(host=error.host, port=error.port)
        if node is None:  # a node we never heard of: learn the new layout first
            await self._rediscover(force=True)
            node = self.client.nodes_manager.get_node(host=error.host, port=error.port)
        if node is None:
            raise ClusterDownError(f"redirected to an unknown node {error.host}:{error.port}")
        return node

    def slot(self, route: Hashable) -> AbstractAsyncContextManager[Any]:
        assert isinstance(route, ClusterNode)
        if route.name not in self._slots:
            self._slots[route.name] = asyncio.Semaphore(self._connections)
        return self._slots[route.name]

    async def unreachable(self, route: Hashable, error: BaseException) -> None:
        if isinstance(route, ClusterNode):
            route.update_active_connections_for_reconnect()
            self.client.nodes_manager.move_node_to_end_of_cached_nodes(route.name)
        self._stale = True

    async def _rediscover(self, *, force: bool = False) -> None:
        """Read the slot map again from any live node (at most every REDISCOVER_EVERY s)."""
        async with self._discovering:
            if not force and time.monotonic() - self._discovered_at < REDISCOVER_EVERY:
                return
            self._discovered_at = time.monotonic()
            try:
                await self.client.nodes_manager.initialize()
                self._stale = False
            except (RedisError, RedisClusterException, OSError):
                self._stale = True  # every node is down: the next call tries again


_RESEND = (AskError, TryAgainError, NoScriptError)  # MovedError is an AskError
_NODE_DOWN = (ClusterDownError, RedisConnectionError, RedisTimeoutError)


class ScriptBatcher:
    def __init__(
        self,
        transport: Transport,
        *,
        max_batch: int = MAX_BATCH,
        ack: ReplicaAck | None = None,
    ) -> None:
        self._transport = transport
        self._max = max_batch
        self._ack = ack
        self._pending: list[_Call] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def run(
        self, script: Script, keys: list[str], args: list[Any], *, acknowledged: bool = False
    ) -> Any:
        """The script's reply. With the guard on, an `acknowledged` call raises
        `NotReplicated` (carrying the reply) when no replica confirmed it in time."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append(_Call(script, keys, args, acknowledged, future))
        if len(self._pending) == 1:
            loop.call_soon(self._flush)  # after everything else ready in this turn
        return await future

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        self._spawn(self._dispatch(batch))

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._sending.add(task)  # a strong reference until it is done
        task.add_done_callback(self._sending.discard)

    async def _dispatch(self, batch: list[_Call]) -> None:
        groups: dict[Hashable, list[_Call]] = {}
        try:
            await self._transport.ready()
            for call in batch:
                groups.setdefault(self._transport.route(call.keys), []).append(call)
        except BaseException as exc:
            _fail(batch, exc)
            return
        for route, calls in groups.items():
            for start in range(0, len(calls), self._max):
                self._spawn(self._send(route, calls[start : start + self._max]))

    def _wait(self, calls: Sequence[_Call]) -> Command | None:
        if self._ack is None or not any(call.acknowledged for call in calls):
            return None
        return ("WAIT", self._ack.replicas, self._ack.timeout_ms)

    async def _send(
        self,
        route: Hashable,
        calls: list[_Call],
        *,
        asking: bool = False,
        load: frozenset[Script] = frozenset(),
    ) -> None:
        """One pipeline on one node: [SCRIPT LOAD …] [ASKING] EVALSHA … [WAIT]."""
        wait = self._wait(calls)
        commands: list[Command] = [("SCRIPT", "LOAD", script.body) for script in load]
        for call in calls:
            commands += [("ASKING",), call.command()] if asking else [call.command()]
        if wait:
            commands.append(wait)
        async with self._transport.slot(route):
            try:
                replies = await self._transport.pipeline(route, commands)
            except BaseException as exc:
                _fail(calls, exc)
                await self._transport.unreachable(route, exc)
                return
        acks = replies.pop() if wait else None
        replies = replies[len(load) :][1::2] if asking else replies[len(load) :]
        again: list[tuple[_Call, BaseException]] = []
        broken: BaseException | None = None
        for call, reply in zip(calls, replies, strict=True):
            if isinstance(reply, _RESEND):
                again.append((call, reply))
            elif isinstance(reply, BaseException):
                _fail([call], reply)
                if isinstance(reply, _NODE_DOWN):
                    broken = reply
            else:
                self._answer(call, reply, acks)
        if broken is not None:  # the connection died mid-reply, or the slot is down
            await self._transport.unreachable(route, broken)
        if again:
            await self._resend(route, again, asking=asking)

    async def _resend(
        self, route: Hashable, failed: list[tuple[_Call, BaseException]], *, asking: bool
    ) -> None:
        """Calls again where their answers sent them, one pipeline per destination.

        MOVED: the slot's new owner (the map is fixed first). ASK: the target, each call
        after `ASKING`. TRYAGAIN: the same node, 50 ms later. NOSCRIPT: the same node,
        after loading the scripts it lacked. A call that was sent after `ASKING` keeps it
        when it goes to the same node again. Each call follows at most MAX_REDIRECTS.
        """
        groups: dict[tuple[Hashable, bool], tuple[list[_Call], set[Script]]] = {}
        if any(isinstance(why, TryAgainError) for _, why in failed):
            await asyncio.sleep(0.05)
        for call, why in failed:
            call.resent += 1
            if call.resent > MAX_REDIRECTS:
                _fail([call], why)
                continue
            try:
                if isinstance(why, AskError):  # MOVED is an AskError too
                    to = await self._transport.redirected(why)
                    ask = not isinstance(why, MovedError)
                else:  # TRYAGAIN, NOSCRIPT: the same node, as it was asked before
                    to, ask = route, asking
            except BaseException as exc:
                _fail([call], exc)
                continue
            calls, load = groups.setdefault((to, ask), ([], set()))
            calls.append(call)
            if isinstance(why, NoScriptError):
                load.add(call.script)
        await asyncio.gather(
            *(
                self._send(to, calls, asking=ask, load=frozenset(load))
                for (to, ask), (calls, load) in groups.items()
            )
        )

    def _answer(self, call: _Call, reply: Any, acks: Any) -> None:
        if call.future.done():
            return
        if call.acknowledged and self._ack is not None:
            confirmed = acks if isinstance(acks, int) else None
            if confirmed is None or confirmed < self._ack.replicas:
                call.future.set_exception(NotReplicated(reply, confirmed))
                return
        call.future.set_result(reply)


def _fail(calls: Sequence[_Call], exc: BaseException) -> None:
    for call in calls:
        if not call.future.done():
            call.future.set_exception(exc)
