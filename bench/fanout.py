"""Capacity push channel: N sockets watching one event, and what that costs the servers.

`python -m bench --suite fanout [--watchers 10000]`: one `headcount serve --workers 2` on a
private PostgreSQL and a private Redis; `--watchers` capacity sockets
(`/ws/events/{id}/capacity`, the default 1 s tick) watch one event while a trickle of
viewers joins (a change every `CHANGE_EVERY` s). Measured over the hold, after the ramp:

* server CPU: the uvicorn master and its workers, in cores (utime + stime from /proc);
* snapshot transactions/s: read-only transactions PostgreSQL committed on the database
  (`pg_stat_database.xact_commit`, minus the joins' own), i.e. capacity snapshots read;
* Redis commands/s (`INFO stats`), the live counts and the shared-snapshot calls;
* pushes received/s by the sockets (every socket must hear every change).

The "before" figures come from the same harness on the per-socket polling code (each
socket re-read the snapshot every tick); see bench/RESULTS.md for the commit.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from dataclasses import dataclass

import httpx
import psycopg
from websockets.asyncio.client import ClientConnection, connect

from headcount.config import Settings
from headcount.domain.identity import Role
from headcount.ledger.urls import plain
from headcount.tokens import mint

CHANGE_EVERY = 2.0
CONNECT_CONCURRENCY = 64


@dataclass
class FanoutResult:
    watchers: int
    seconds: float
    server_cores: float
    snapshot_tx_per_s: float
    redis_cmds_per_s: float
    pushes_per_s: float
    changes: int


def _tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of `pid` and its children (uvicorn's workers)."""
    pids = [pid]
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False)
    pids += [int(p) for p in found.stdout.split()]
    total = 0.0
    for each in pids:
        try:
            fields = open(f"/proc/{each}/stat").read().rsplit(")", 1)[1].split()  # noqa: SIM115
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / 100  # utime, stime in clock ticks
    return total


def _xacts(database_url: str) -> int:
    with psycopg.connect(plain(database_url)) as conn:
        row = conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    return int(row[0]) if row else 0


def _redis_commands(port: int) -> int:
    out = subprocess.run(
        ["redis-cli", "-p", str(port), "INFO", "stats"], capture_output=True, text=True, check=True
    ).stdout
    for line in out.splitlines():
        if line.startswith("total_commands_processed:"):
            return int(line.split(":")[1])
    return 0


def capacity_watchers(
    base: str, server_pid: int, database_url: str, redis_port: int, *, watchers: int, seconds: float
) -> FanoutResult:
    organizer = {"Authorization": f"Bearer {mint(Settings(), 'bench-org', Role.ORGANIZER)}"}
    event = httpx.post(
        f"{base}/api/v1/events",
        json={"name": "Fan-out", "virtual_settings": {"max_concurrent_viewers": None}},
        headers=organizer,
        timeout=30,
    ).json()
    url = base.replace("http://", "ws://") + f"/ws/events/{event['id']}/capacity"

    async def run() -> FanoutResult:
        sockets: list[ClientConnection] = []
        pushes = 0
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

        async def open_one() -> None:
            async with gate:
                ws = await connect(url, open_timeout=60, max_queue=None)
                json.loads(await ws.recv())  # the first snapshot
                sockets.append(ws)

        async def listen(ws: ClientConnection) -> None:
            nonlocal pushes
            async for _ in ws:
                pushes += 1

        await asyncio.gather(*(open_one() for _ in range(watchers)))
        listeners = [asyncio.create_task(listen(ws)) for ws in sockets]
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            await asyncio.sleep(2)  # settle after the ramp
            cpu, xacts, cmds = (
                _tree_cpu_seconds(server_pid),
                _xacts(database_url),
                _redis_commands(redis_port),
            )
            pushes, started, changes = 0, time.perf_counter(), 0
            while time.perf_counter() - started < seconds:
                joined = await http.post(
                    f"/api/v1/events/{event['id']}/viewers",
                    headers={
                        "Authorization": f"Bearer {mint(Settings(), f'v{changes}', Role.ATTENDEE)}"
                    },
                )
                joined.raise_for_status()
                changes += 1
                await asyncio.sleep(CHANGE_EVERY)
            elapsed = time.perf_counter() - started
            result = FanoutResult(
                watchers=len(sockets),
                seconds=round(elapsed, 1),
                server_cores=round((_tree_cpu_seconds(server_pid) - cpu) / elapsed, 2),
                # Each join is one transaction of its own: not a snapshot.
                snapshot_tx_per_s=round((_xacts(database_url) - xacts - changes) / elapsed, 1),
                redis_cmds_per_s=round((_redis_commands(redis_port) - cmds) / elapsed, 1),
                pushes_per_s=round(pushes / elapsed, 1),
                changes=changes,
            )
        for task in listeners:
            task.cancel()
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
        return result

    return asyncio.run(run())
