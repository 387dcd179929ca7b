"""The waiting room at scale: 100,000 visitors queued in one Redis (and in one process).

* joins/s: 64 clients joining distinct visitors through `RedisQueues` until 100,000 are
  queued, beside `redis-benchmark` running the same join script with nothing else in the
  path (the machine's limit for it, measured in the same run);
* memory per queued visitor: Redis `used_memory` after minus before, over the visitors;
* position lookups at 1,000, 10,000 and 100,000 queued: the median round trip of a
  `look`, and the script's own time inside Redis (`INFO commandstats`; ZRANK in the
  script), which stays flat if lookups are O(log n) (O(n) would grow 100-fold);
* the in-process store (`MemoryQueues`): joins/s, lookup time and Python heap per visitor.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import statistics
import time
import tracemalloc
from dataclasses import dataclass, field

import redis

from bench.machine import tool_output
from headcount.domain.queue import QueueOrder, RoomTerms
from headcount.presence import queue_redis
from headcount.presence.queues import MemoryQueues, Queues
from headcount.presence.redis import RedisPresence

VISITORS = 100_000
CHECKPOINTS = (1_000, 10_000, 100_000)
LOOKUPS = 2_000


@dataclass(frozen=True)
class QueueScale:
    joins_per_s: float
    bytes_per_visitor: float
    lookup_us: dict[int, float]  # median round trip of one lookup, by queue size
    # Redis only: the lookup script's own time inside Redis (`INFO commandstats`), by size.
    server_us: dict[int, float] = field(default_factory=dict)


def terms() -> RoomTerms:
    # Not open for an hour: nobody is admitted while the queue fills.
    return RoomTerms(
        room_id=f"wr_b{secrets.token_hex(5)}",
        opens_at_ms=int(time.time() * 1000) + 3_600_000,
        active_limit=1_000,
        admit_per_minute=6_000,
        pass_ttl_ms=600_000,
        order=QueueOrder.FIFO,
    )


def redis_benchmark_join(url: str, *, clients: int, requests: int) -> float:
    """Joins/s when Redis runs the join script with nothing else in the path."""
    port = url.rsplit(":", 1)[1].split("/", maxsplit=1)[0]
    room = terms()
    keys = [f"hcrb:queue:{{wr.{room.room_id}}}:{name}" for name in queue_redis._KEY_NAMES]
    out = tool_output(
        *("redis-benchmark", "-h", "127.0.0.1", "-p", port),
        *("-c", str(clients), "-n", str(requests), "-r", "100000000", "-q"),
        *("EVAL", queue_redis._SPOT.body, str(len(keys)), *keys),
        *("v__rand_int__", "1", str(room.opens_at_ms), "fifo", "0"),
    )
    found = re.findall(r"([\d.]+) requests per second", out)
    if not found:
        raise RuntimeError(f"redis-benchmark printed no rate:\n{out}")
    client = redis.Redis.from_url(url)
    client.delete(*keys)
    client.close()
    return float(found[-1])


async def _fill(
    store: Queues, room: RoomTerms, *, clients: int, plain: redis.Redis | None = None
) -> tuple[float, dict[int, float], dict[int, float]]:
    """Join VISITORS with `clients` in flight; at each checkpoint, time LOOKUPS lookups of
    random queued visitors. Returns (joins/s while joining, median lookup µs by size, and
    with `plain` the script's µs per call inside Redis by size)."""
    joined = 0
    joining = 0.0
    lookups: dict[int, float] = {}
    inside: dict[int, float] = {}

    async def worker(first: int, stop: int, step: int) -> None:
        for n in range(first, stop, step):
            await store.join(room, f"v{n}", draw=0)

    for checkpoint in CHECKPOINTS:
        start = time.perf_counter()
        await asyncio.gather(*(worker(joined + i, checkpoint, clients) for i in range(clients)))
        joining += time.perf_counter() - start
        joined = checkpoint
        took = []
        if plain is not None:
            plain.config_resetstat()
        for _ in range(LOOKUPS):
            visitor = f"v{secrets.randbelow(joined)}"
            begin = time.perf_counter()
            spot = await store.look(room, visitor)
            took.append((time.perf_counter() - begin) * 1e6)
            assert spot.position is not None
        lookups[checkpoint] = statistics.median(took)
        if plain is not None:
            stats = plain.info("commandstats").get("cmdstat_evalsha", {})
            inside[checkpoint] = float(stats.get("usec_per_call", 0.0))
    return joined / joining, lookups, inside


async def _redis_scale(url: str, clients: int) -> QueueScale:
    presence = RedisPresence(url, prefix=f"hcq{secrets.token_hex(3)}", max_connections=clients)
    plain = redis.Redis.from_url(url)
    try:
        store = queue_redis.RedisQueues.beside(presence)
        room = terms()
        before = int(plain.info("memory")["used_memory"])
        rate, lookups, inside = await _fill(store, room, clients=clients, plain=plain)
        after = int(plain.info("memory")["used_memory"])
        figures = await store.figures(room)
        assert figures.queued == VISITORS, figures
        plain.delete(*store._keys(room))
    finally:
        plain.close()
        await presence.close()
    return QueueScale(rate, (after - before) / VISITORS, lookups, inside)


def redis_scale(url: str, *, clients: int = 64) -> QueueScale:
    return asyncio.run(_redis_scale(url, clients))


async def _memory_scale() -> QueueScale:
    store = MemoryQueues()
    room = terms()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    rate, lookups, _ = await _fill(store, room, clients=1)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return QueueScale(rate, (after - before) / VISITORS, lookups)


def memory_scale() -> QueueScale:
    return asyncio.run(_memory_scale())
