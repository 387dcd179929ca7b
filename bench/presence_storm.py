"""Presence storm: admissions and heartbeats through the engine, and many WebSocket viewers.

The limit for the engine is `redis-benchmark` running the engine's own admission script
(`headcount.presence.redis._ADMIT`, same keys and arguments) against the same private
Redis at the same concurrency: what Redis itself can do, with no Python in the way.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import re
import secrets
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.machine import tool_output
from headcount.api.app import GC_THRESHOLDS
from headcount.config import Settings
from headcount.domain.identity import Role
from headcount.presence import redis as redis_engine
from headcount.presence.base import Resource
from headcount.presence.redis import RedisPresence
from headcount.tokens import mint


def redis_benchmark_admit(url: str, *, clients: int, requests: int) -> float:
    """Admissions/s when Redis runs the engine's script with nothing else in the path."""
    port = url.rsplit(":", 1)[1].split("/", maxsplit=1)[0]
    tag = f"{{viewers.evt_rb{secrets.token_hex(3)}}}"
    keys = [f"hc:presence:{tag}:{name}" for name in redis_engine._KEY_NAMES]
    # A place per connection, no grace: what the engine rates below ask for too.
    out = tool_output(
        *("redis-benchmark", "-h", "127.0.0.1", "-p", port),
        *("-c", str(clients), "-n", str(requests), "-r", "100000000", "-q"),
        *("EVAL", redis_engine._ADMIT, str(len(keys)), *keys),
        *("30000", "-1", "viewers.evt_rb.__rand_int__", "holder", "0", "connections", "60000"),
    )
    found = re.findall(r"([\d.]+) requests per second", out)
    if not found:
        raise RuntimeError(f"redis-benchmark printed no rate:\n{out}")
    return float(found[-1])


async def _engine_rate(url: str, *, clients: int, seconds: float, heartbeats: bool) -> float:
    engine = RedisPresence(url, prefix=f"hcb{secrets.token_hex(3)}", max_connections=clients)
    resource = Resource("viewers", f"evt_{secrets.token_hex(6)}")
    leases = []
    if heartbeats:
        for i in range(clients):
            admitted = await engine.admit(resource, f"h{i}", limit=None, ttl=60)
            assert admitted.lease is not None
            leases.append(admitted.lease)
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker(n: int) -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            if heartbeats:
                await engine.renew(leases[n].lease_id, leases[n].holder, ttl=60)
            else:
                await engine.admit(resource, f"u{n}", limit=None, ttl=60)
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(clients)))
    rate = done / (time.perf_counter() - start)
    await engine.close()
    return rate


def engine_admit_rate(url: str, *, clients: int, seconds: float) -> float:
    return asyncio.run(_engine_rate(url, clients=clients, seconds=seconds, heartbeats=False))


def engine_heartbeat_rate(url: str, *, clients: int, seconds: float) -> float:
    return asyncio.run(_engine_rate(url, clients=clients, seconds=seconds, heartbeats=True))


@dataclass(frozen=True)
class ViewerResult:
    viewers: int
    refused: int
    dropped: int
    ramp_joins_per_s: float
    join_p50_ms: float  # ramp: 32 handshakes in flight, as fast as the server admits
    join_p99_ms: float
    steady_join_p50_ms: float  # probes at 20/s while every viewer is held and pinging
    steady_join_p99_ms: float
    pong_p99_ms: float
    server_cores: float  # the server process' CPU while holding them, in cores
    rss_per_viewer_kib: float


def _rss_kib(pid: int) -> int:
    text = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"VmRSS:\s+(\d+)", text)
    return int(found.group(1)) if found else 0


@dataclass
class _Run:
    joins: list[float]
    pongs: list[float]
    probes: list[float]
    refused: int = 0
    dropped: int = 0
    ramp_seconds: float = 0.0
    server_cores: float = 0.0


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _viewers(
    base: str,
    event_id: str,
    count: int,
    *,
    hold_seconds: float,
    ping_every: float,
    server_pid: int,
) -> _Run:
    """Join `count` viewers (32 handshakes at a time); each pings from the moment it joins.
    Once all are in, probe viewers join and leave at 20/s for `hold_seconds`, timing the
    join a newcomer sees while the process holds everyone; pings are timed then too."""
    import websockets

    settings = Settings()
    ws_base = base.replace("http://", "ws://")
    run = _Run([], [], [])
    gate = asyncio.Semaphore(32)
    all_joined = asyncio.Event()
    stop = asyncio.Event()
    started = time.perf_counter()

    async def join(i: int) -> tuple[Any, dict[str, Any], float]:
        token = mint(settings, f"viewer-{i}", Role.ATTENDEE)
        start = time.perf_counter()
        ws = await websockets.connect(
            f"{ws_base}/ws/events/{event_id}/stream?token={token}",
            open_timeout=120,
            compression=None,
        )
        message = json.loads(await ws.recv())
        return ws, message, (time.perf_counter() - start) * 1000

    async def viewer(i: int) -> None:
        async with gate:
            ws, message, took = await join(i)
        if message.get("type") != "joined":
            run.refused += 1
        else:
            run.joins.append(took)
        if len(run.joins) + run.refused == count:
            run.ramp_seconds = time.perf_counter() - started
            all_joined.set()
        if message.get("type") != "joined":
            await ws.close()
            return
        try:
            await asyncio.sleep(ping_every * (i % 100) / 100)
            while not stop.is_set():
                sent = time.perf_counter()
                await ws.send('{"type": "ping"}')
                reply = json.loads(await ws.recv())
                if reply.get("type") == "pong" and all_joined.is_set():
                    run.pongs.append((time.perf_counter() - sent) * 1000)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), ping_every)
        except websockets.ConnectionClosed:
            run.dropped += 1
        finally:
            await ws.close()

    async def probe(i: int) -> None:
        ws, message, took = await join(count + i)
        if message.get("type") == "joined":
            run.probes.append(took)
            await ws.send('{"type": "leave"}')
        await ws.close()

    async def conductor() -> None:
        await all_joined.wait()
        await asyncio.sleep(ping_every)  # every viewer is pinging on its own schedule
        cpu, wall = _cpu_seconds(server_pid), time.perf_counter()
        probes = []
        for i in range(int(hold_seconds * 20)):
            probes.append(asyncio.create_task(probe(i)))
            await asyncio.sleep(0.05)
        await asyncio.gather(*probes)
        run.server_cores = (_cpu_seconds(server_pid) - cpu) / (time.perf_counter() - wall)
        stop.set()

    await asyncio.gather(conductor(), *(viewer(i) for i in range(count)))
    return run


def _p(values: list[float], pct: int) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100)[pct - 1]


def websocket_viewers(
    base: str, server_pid: int, *, count: int, hold_seconds: float
) -> ViewerResult:
    organizer = {"Authorization": f"Bearer {mint(Settings(), 'bench-org', Role.ORGANIZER)}"}
    event = httpx.post(
        f"{base}/api/v1/events",
        json={"name": "Stream", "virtual_settings": {"max_concurrent_viewers": count * 2}},
        headers=organizer,
    ).json()
    before = _rss_kib(server_pid)
    rss_peak = [before]

    async def run() -> _Run:
        async def sample() -> None:
            while True:
                rss_peak.append(_rss_kib(server_pid))
                await asyncio.sleep(0.5)

        sampler = asyncio.create_task(sample())
        try:
            return await _viewers(
                base,
                event["id"],
                count,
                hold_seconds=hold_seconds,
                ping_every=5.0,
                server_pid=server_pid,
            )
        finally:
            sampler.cancel()

    # The client holds as many sockets as the server: its own collector pauses would show
    # up as server latency, so it gets the same treatment (headcount.api.app).
    gc.collect()
    gc.freeze()
    thresholds = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        found = asyncio.run(run())
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
    return ViewerResult(
        viewers=len(found.joins) - found.dropped,
        refused=found.refused,
        dropped=found.dropped,
        ramp_joins_per_s=round(len(found.joins) / found.ramp_seconds, 1)
        if found.ramp_seconds
        else 0.0,
        join_p50_ms=round(_p(found.joins, 50), 1),
        join_p99_ms=round(_p(found.joins, 99), 1),
        steady_join_p50_ms=round(_p(found.probes, 50), 1),
        steady_join_p99_ms=round(_p(found.probes, 99), 1),
        pong_p99_ms=round(_p(found.pongs, 99), 1),
        server_cores=round(found.server_cores, 2),
        rss_per_viewer_kib=round((max(rss_peak) - before) / max(1, len(found.joins)), 1),
    )
