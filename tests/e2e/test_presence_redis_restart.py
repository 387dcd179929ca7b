"""Restart Redis under live traffic: the limit holds, and the service heals by itself.

This test shuts the shared Redis down (`redis-cli shutdown nosave`) and starts it again
(`redis-server --daemonize yes … --save "" --appendonly no`), so every lease is lost.
Other suites use the same Redis: the outage is kept to about a second, and Redis is
restarted in a `finally` block whatever happens. On a Redis Cluster (a private one, all
six nodes SIGKILLed and started again: the layout survives in nodes.conf, the data not)
the same must hold, including scripts missing from every restarted node.

While 40 clients (20 holding places, 20 wanting in) keep joining and heartbeating across
two server processes, a monitor reads the live count through the API. Checked: the count
never exceeds the limit; requests during the outage fail fast with 503
`service_unavailable`; afterwards `/readyz` is green again without restarting anything,
clients whose leases were lost get 410 and rejoin, and exactly `LIMIT` hold a place.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from headcount.domain.identity import Role
from support import services
from support.api import client
from support.auth import bearer
from support.private_services import private_redis_cluster, redis_available
from support.servers import running_servers

pytestmark = [pytest.mark.slow, pytest.mark.redis]

LIMIT = 20
WANTING = 20
REDIS_START = [
    "redis-server",
    "--daemonize",
    "yes",
    "--bind",
    "127.0.0.1",
    "--port",
    "6379",
    "--save",
    "",
    "--appendonly",
    "no",
]


def redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), 0.2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def wait_for(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def restart_redis_now() -> None:
    if not redis_up():
        subprocess.run(REDIS_START, check=True, cwd=tempfile.gettempdir(), capture_output=True)
    assert wait_for(redis_up, 10), "Redis did not come back"


@dataclass
class Tally:
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    slowest_503: float = 0.0
    max_seen: int = 0
    samples: int = 0


@dataclass
class Viewer:
    sub: str
    lease_id: str | None = None


async def viewer_loop(
    http: httpx.AsyncClient, event_id: str, me: Viewer, tally: Tally, stop: asyncio.Event
) -> None:
    headers = bearer(me.sub)
    while not stop.is_set():
        started = time.monotonic()
        if me.lease_id is None:
            answer = await http.post(f"/api/v1/events/{event_id}/viewers", headers=headers)
            if answer.status_code == 201:
                me.lease_id = answer.json()["lease_id"]
            tally.statuses["join", answer.status_code] += 1
        else:
            answer = await http.post(f"/api/v1/leases/{me.lease_id}/heartbeat", headers=headers)
            if answer.status_code == 410:
                me.lease_id = None  # lost with Redis: ask again
            tally.statuses["heartbeat", answer.status_code] += 1
        if answer.status_code == 503:
            assert answer.json()["code"] == "service_unavailable"
            tally.slowest_503 = max(tally.slowest_503, time.monotonic() - started)
        await asyncio.sleep(0.1)


async def monitor(
    http: httpx.AsyncClient, event_id: str, tally: Tally, stop: asyncio.Event
) -> None:
    while not stop.is_set():
        snap = await http.get(f"/api/v1/events/{event_id}/capacity")
        assert snap.status_code == 200, snap.text  # the snapshot degrades, it does not fail
        live = snap.json()["viewers"]["viewers"]
        if live is not None:
            tally.max_seen = max(tally.max_seen, live)
            tally.samples += 1
        await asyncio.sleep(0.02)


async def ready(http: httpx.AsyncClient) -> bool:
    return (await http.get("/readyz")).status_code == 200


@dataclass
class Outage:
    """How one backend is taken down and brought back, and where it is."""

    url: str
    begin: Callable[[], None]
    end: Callable[[], None]


def _shared_redis_outage() -> Outage:
    services.need_redis()

    def begin() -> None:
        subprocess.run(["redis-cli", "shutdown", "nosave"], check=False)
        assert wait_for(lambda: not redis_up(), 5)

    return Outage(services.REDIS_URL, begin, restart_redis_now)


@pytest.fixture(params=["redis", "redis-cluster"])
def outage(request: pytest.FixtureRequest) -> Iterator[Outage]:
    if request.param == "redis":
        yield _shared_redis_outage()
        return
    if not redis_available():
        services.missing("redis-server", "redis-server is not installed", skip_reason="no redis")
    with private_redis_cluster() as cluster:  # its own: this test kills every node
        yield Outage(cluster.url, cluster.stop, cluster.come_back)


async def test_redis_restart_never_overfills_and_heals(
    sqlite_url: str, log_dir: Path, outage: Outage
) -> None:
    env = {
        "HEADCOUNT_REDIS_URL": outage.url,
        "HEADCOUNT_REDIS_KEY_PREFIX": f"hctest-{secrets.token_hex(6)}",
        "HEADCOUNT_PRESENCE_TTL": "30",  # nothing lapses by itself: only the restart loses leases
    }
    with running_servers(2, sqlite_url, log_dir, env) as servers:
        clients = [client(s.base_url) for s in servers]
        stop = asyncio.Event()
        tally = Tally()
        try:
            made = await clients[0].post(
                "/api/v1/events",
                json={"name": "Restart", "virtual_settings": {"max_concurrent_viewers": LIMIT}},
                headers=bearer("org-restart", Role.ORGANIZER),
            )
            event_id = made.json()["id"]
            crowd = [Viewer(f"v{n}") for n in range(LIMIT + WANTING)]
            tasks = [
                asyncio.create_task(viewer_loop(clients[n % 2], event_id, v, tally, stop))
                for n, v in enumerate(crowd)
            ]
            tasks += [asyncio.create_task(monitor(c, event_id, tally, stop)) for c in clients]
            deadline = time.monotonic() + 15  # slow on a loaded machine: wait until full
            while sum(v.lease_id is not None for v in crowd) < LIMIT:
                assert time.monotonic() < deadline, "the stream never filled up"
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)
            assert sum(v.lease_id is not None for v in crowd) == LIMIT
            before = tally.statuses.copy()

            outage_started = time.monotonic()
            try:
                await asyncio.to_thread(outage.begin)
                await asyncio.sleep(0.8)  # traffic meets a dead Redis
                assert not any(await asyncio.gather(*(ready(c) for c in clients)))
            finally:
                await asyncio.to_thread(outage.end)
            down_for = time.monotonic() - outage_started

            healed_at = None
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if all(await asyncio.gather(*(ready(c) for c in clients))):
                    healed_at = time.monotonic() - outage_started - down_for
                    break
                await asyncio.sleep(0.05)
            assert healed_at is not None, "service did not recover by itself"
            await asyncio.sleep(2.0)  # lost leases answer 410, their holders rejoin
        finally:
            stop.set()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            for http in clients:
                await http.aclose()
        failures = [r for r in results if isinstance(r, BaseException)]
        assert failures == []
        during = tally.statuses - before
        print(
            f"\nredis restart: outage {down_for:.2f}s, ready again {healed_at:.2f}s after, "
            f"slowest 503 {tally.slowest_503:.2f}s, max live {tally.max_seen} "
            f"over {tally.samples} samples, answers since the outage {dict(during)}"
        )
        assert tally.max_seen <= LIMIT
        assert during["join", 503] + during["heartbeat", 503] > 0  # the outage was felt
        assert during["heartbeat", 410] > 0  # leases were lost and their holders told so
        assert tally.slowest_503 < 5.0  # fail fast, not hang (loose: CI machines are shared)
        holders = [v for v in crowd if v.lease_id is not None]
        assert len(holders) == LIMIT
