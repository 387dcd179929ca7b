"""Many sockets watching one event cost one snapshot per tick or change for the cluster.

Two server processes share Redis; `WATCHERS` capacity sockets (half on each) watch one
event with a 0.5 s tick. Counted from the servers' own `/metrics`
(`headcount_capacity_snapshots_computed_total`): the snapshots computed in a few seconds
are about one per tick (plus one per announced change) for both processes together —
not one per socket per tick, which is what per-socket polling cost. And every socket, on
either process, still hears a change made through either.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from headcount.domain.identity import Role
from support import services
from support.api import client
from support.auth import bearer
from support.servers import Server, running_servers

pytestmark = [pytest.mark.slow, pytest.mark.redis]

WATCHERS = 300
TICK = 0.5
WATCH_SECONDS = 2.0  # 4 ticks: per-socket polling would compute ~1,200 snapshots


async def _computed(http: httpx.AsyncClient) -> float:
    text = (await http.get("/metrics")).text
    found = re.search(r"^headcount_capacity_snapshots_computed_total (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


async def _receive(ws: ClientConnection, within: float = 5) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), within))
    return message


def _ws(server: Server, event_id: str) -> str:
    base = server.base_url.replace("http://", "ws://")
    return f"{base}/ws/events/{event_id}/capacity?interval={TICK}"


async def test_thousands_of_watchers_share_one_snapshot_per_tick(
    sqlite_url: str, log_dir: Path
) -> None:
    services.need_redis()
    env = {
        "HEADCOUNT_REDIS_URL": services.REDIS_URL,
        "HEADCOUNT_REDIS_KEY_PREFIX": f"hctest-{secrets.token_hex(6)}",
    }
    with running_servers(2, sqlite_url, log_dir, env) as servers:
        clients = [client(s.base_url) for s in servers]
        sockets: list[ClientConnection] = []
        try:
            made = await clients[0].post(
                "/api/v1/events",
                json={"name": "Fan-out", "virtual_settings": {"max_concurrent_viewers": 5}},
                headers=bearer("org-fanout", Role.ORGANIZER),
            )
            event_id = made.json()["id"]
            for n in range(WATCHERS):
                sockets.append(await connect(_ws(servers[n % 2], event_id)))
            firsts = await asyncio.gather(*(_receive(ws) for ws in sockets))
            assert {f["snapshot"]["viewers"]["viewers"] for f in firsts} == {0}

            before = sum([await _computed(c) for c in clients])
            started = time.monotonic()
            await asyncio.sleep(WATCH_SECONDS)
            # A change through process 0 reaches every socket on both processes.
            joined = await clients[0].post(
                f"/api/v1/events/{event_id}/viewers", headers=bearer("ann")
            )
            assert joined.status_code == 201
            updates = await asyncio.gather(*(_receive(ws, within=3) for ws in sockets))
            elapsed = time.monotonic() - started
            computed = sum([await _computed(c) for c in clients]) - before
        finally:
            for ws in sockets:
                await ws.close()
            for http in clients:
                await http.aclose()
    ticks = elapsed / TICK
    print(
        f"\n{WATCHERS} sockets over 2 processes, {elapsed:.1f}s at {TICK}s ticks: "
        f"{computed:.0f} snapshots computed (per-socket polling: ~{WATCHERS * ticks:.0f})"
    )
    assert all(u["snapshot"]["viewers"]["viewers"] == 1 for u in updates)
    # One per tick for the cluster, one for the change, and slack for ticks on the edge
    # (the two processes' clocks straddling a tick): far below one per socket.
    assert computed <= 2 * ticks + 4
