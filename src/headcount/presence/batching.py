"""Script calls made in the same event-loop turn travel to Redis as one pipeline.

A join or heartbeat is one Lua script call, and Redis runs one in ~20 µs; redis-py spends
several times that per call in Python (connection checkout, packing, a socket write and
read, timeouts). With thousands of viewers renewing, the process ran out of CPU long
before Redis did (bench/RESULTS.md). Calls queued during one turn of the loop are sent
together on one connection, non-transactionally: Redis still runs each script atomically
and on its own, so admission stays exact; only the Python overhead is shared. A lone call
goes straight through, so a quiet server pays nothing extra.

A failure to reach Redis fails every call of that batch, each caller turning it into its
own 503. A script missing after a Redis restart (NOSCRIPT) is retried on its own through
redis-py's script object, which loads it again.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

# Calls per pipeline: bounds the size of one write and of one burst of replies.
MAX_BATCH = 256


@dataclass(frozen=True, slots=True)
class _Call:
    script: AsyncScript
    keys: list[str]
    args: list[Any]
    future: asyncio.Future[Any]


class ScriptBatcher:
    def __init__(self, client: aioredis.Redis, *, max_batch: int = MAX_BATCH) -> None:
        self._client = client
        self._max = max_batch
        self._pending: list[_Call] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def run(self, script: AsyncScript, keys: list[str], args: list[Any]) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append(_Call(script, keys, args, future))
        if len(self._pending) == 1:
            loop.call_soon(self._flush)  # after everything else ready in this turn
        return await future

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        for start in range(0, len(batch), self._max):
            task = asyncio.ensure_future(self._send(batch[start : start + self._max]))
            self._sending.add(task)  # a strong reference until it is done
            task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[_Call]) -> None:
        if len(batch) == 1:
            await self._settle(batch[0], self._one(batch[0]))
            return
        try:
            pipe = self._client.pipeline(transaction=False)
            for call in batch:
                pipe.evalsha(call.script.sha, len(call.keys), *call.keys, *call.args)
            replies: list[Any] = await pipe.execute(raise_on_error=False)
        except BaseException as exc:
            for call in batch:
                if not call.future.done():
                    call.future.set_exception(exc)
            return
        for call, reply in zip(batch, replies, strict=True):
            if isinstance(reply, NoScriptError):
                await self._settle(call, self._one(call))
            elif isinstance(reply, BaseException):
                if not call.future.done():
                    call.future.set_exception(reply)
            elif not call.future.done():
                call.future.set_result(reply)

    async def _one(self, call: _Call) -> Any:
        return await call.script(keys=call.keys, args=call.args)

    @staticmethod
    async def _settle(call: _Call, work: Any) -> None:
        try:
            reply = await work
        except BaseException as exc:
            if not call.future.done():
                call.future.set_exception(exc)
            return
        if not call.future.done():
            call.future.set_result(reply)
