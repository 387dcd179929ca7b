"""Live presence under load and crashes, through real server processes.

* 1,000 concurrent joins against a limit of 100, spread over two processes sharing Redis
  or a Redis Cluster (and over one process with the in-process engine): exactly 100 are
  admitted.
* SIGKILL one of two processes: the places its clients held (REST leases and open stream
  sockets) come back within the TTL, while the other process's clients keep theirs (on
  one Redis and on a cluster).
* Racing for the last huddle place over two processes: exactly one winner.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from headcount.config import Settings
from headcount.domain.identity import Role
from headcount.tokens import mint
from support import services
from support.api import client, create_stream_event
from support.auth import bearer
from support.redis_backends import REDIS_BACKENDS, redis_backend_url
from support.servers import (
    SMALL_POOL,
    Server,
    presence_env,
    running_server,
    running_servers,
    serving,
)

pytestmark = pytest.mark.slow

JOINERS = 1000
LIMIT = 100
TTL = 2
HAMMER_TTL = 60
# All 1,000 requests are in flight at once, multiplexed over this many keep-alive
# connections per process (more sockets only add accept/scheduling overhead on 2 cores).
CONNECTIONS = 50
ORGANIZER = "org-hammer"


async def make_target(http: httpx.AsyncClient, kind: str, limit: int) -> tuple[str, str]:
    """An event (and booth); returns (event_id, join path)."""
    org = bearer(ORGANIZER, Role.ORGANIZER)
    cap = limit if kind == "viewers" else None
    event_id = await create_stream_event(http, cap, headers=org, name="Hammer")
    if kind == "viewers":
        return event_id, f"/api/v1/events/{event_id}/viewers"
    booth = await http.post(
        f"/api/v1/events/{event_id}/booths",
        json={"name": "Hot booth", "max_visitors": limit},
        headers=org,
    )
    assert booth.status_code == 201, booth.text
    return event_id, f"/api/v1/booths/{booth.json()['id']}/visits"


async def hammer(
    clients: list[httpx.AsyncClient], path: str, joiners: int
) -> tuple[list[httpx.Response], float]:
    headers = [bearer(f"fan-{n}") for n in range(joiners)]  # minted before the clock starts
    start = time.perf_counter()
    answers = await asyncio.gather(
        *(clients[n % len(clients)].post(path, headers=headers[n]) for n in range(joiners))
    )
    return list(answers), time.perf_counter() - start


async def live_count(http: httpx.AsyncClient, event_id: str, kind: str) -> int:
    snap = (await http.get(f"/api/v1/events/{event_id}/capacity")).json()
    count: int = snap["viewers"]["viewers"] if kind == "viewers" else snap["booths"][0]["visitors"]
    return count


REFUSAL = {"viewers": "viewer_limit_reached", "booths": "booth_full"}


@pytest.mark.parametrize(
    ("kind", "backend"),
    [
        ("viewers", "redis"),
        ("booths", "redis"),
        # Every kind runs the same scripts; one on the cluster keeps CI time in check.
        pytest.param("viewers", "redis-cluster", id="viewers-redis-cluster"),
    ],
)
async def test_thousand_joins_over_two_processes_admit_exactly_the_limit(
    kind: str, backend: str, shared_postgres: str, log_dir: Path, request: pytest.FixtureRequest
) -> None:
    env = presence_env(HAMMER_TTL, redis_backend_url(request, backend))
    # A long TTL: a lease lapsing mid-hammer would rightly free a place for someone else.
    async with serving(2, shared_postgres, log_dir, env, connections=CONNECTIONS) as (_, clients):
        event_id, path = await make_target(clients[0], kind, LIMIT)
        answers, elapsed = await hammer(clients, path, JOINERS)
        statuses = Counter(r.status_code for r in answers)
        codes = Counter(r.json().get("code") for r in answers if r.status_code != 201)
        print(
            f"\n{kind} {backend}, 2 processes: {JOINERS} joins in {elapsed:.2f}s = "
            f"{JOINERS / elapsed:.0f} joins/s, {dict(statuses)}"
        )
        assert statuses == {201: LIMIT, 409: JOINERS - LIMIT}, (statuses, codes)
        assert codes == {REFUSAL[kind]: JOINERS - LIMIT}
        leases = {r.json()["lease_id"] for r in answers if r.status_code == 201}
        assert len(leases) == LIMIT
        assert max(r.json()["occupancy"] for r in answers if r.status_code == 201) == LIMIT
        for http in clients:  # both processes see the same live count
            assert await live_count(http, event_id, kind) == LIMIT


async def test_thousand_joins_in_process_engine_admit_exactly_the_limit(
    sqlite_url: str, log_dir: Path
) -> None:
    with running_server(sqlite_url, log_dir, {"HEADCOUNT_PRESENCE_TTL": str(HAMMER_TTL)}) as server:
        async with client(server.base_url, connections=CONNECTIONS) as http:
            event_id, path = await make_target(http, "viewers", LIMIT)
            answers, elapsed = await hammer([http], path, JOINERS)
            statuses = Counter(r.status_code for r in answers)
            print(
                f"\nviewers in-process engine, 1 process: {JOINERS} joins in {elapsed:.2f}s = "
                f"{JOINERS / elapsed:.0f} joins/s, {dict(statuses)}"
            )
            assert statuses == {201: LIMIT, 409: JOINERS - LIMIT}
            assert await live_count(http, event_id, "viewers") == LIMIT


async def _keep_alive(http: httpx.AsyncClient, leases: list[tuple[str, str]]) -> None:
    while True:
        renewed = await asyncio.gather(
            *(
                http.post(f"/api/v1/leases/{lease_id}/heartbeat", headers=bearer(holder))
                for holder, lease_id in list(leases)
            )
        )
        assert all(r.status_code == 200 for r in renewed), [r.text for r in renewed]
        await asyncio.sleep(TTL / 4)


@pytest.mark.parametrize("backend", REDIS_BACKENDS)
async def test_sigkill_frees_the_dead_process_places_within_the_ttl(
    backend: str, shared_postgres: str, log_dir: Path, request: pytest.FixtureRequest
) -> None:
    # Without a reconnect grace: places go with their leases. With one, they are held for
    # their holders first (tests/e2e/test_presence_grace.py).
    env = presence_env(TTL, redis_backend_url(request, backend), grace=0)
    with running_servers(2, shared_postgres, log_dir, env) as (doomed, survivor):
        async with client(doomed.base_url) as on_doomed, client(survivor.base_url) as on_survivor:
            event_id, path = await make_target(on_survivor, "viewers", 40)
            # Every client renews while its process lives (lists grow as clients join).
            on_dead: list[tuple[str, str]] = []
            kept: list[tuple[str, str]] = []
            sockets: list[ClientConnection] = []
            renewals = [
                asyncio.create_task(_keep_alive(on_doomed, on_dead)),
                asyncio.create_task(_ping(sockets)),
            ]
            heartbeats = asyncio.create_task(_keep_alive(on_survivor, kept))
            try:
                for n in range(25):
                    got = await on_doomed.post(path, headers=bearer(f"d{n}"))
                    assert got.status_code == 201
                    on_dead.append((f"d{n}", got.json()["lease_id"]))
                for n in range(5):
                    sockets.append(await _watch(doomed, event_id, f"w{n}"))
                for n in range(10):
                    got = await on_survivor.post(path, headers=bearer(f"s{n}"))
                    assert got.status_code == 201
                    kept.append((f"s{n}", got.json()["lease_id"]))
                assert await live_count(on_survivor, event_id, "viewers") == 40

                # The crash: the process dies, its clients' renewals die with it.
                for task in renewals:
                    task.cancel()
                _kill(doomed)
                killed_at = time.monotonic()
                while await live_count(on_survivor, event_id, "viewers") > 10:
                    assert time.monotonic() - killed_at < TTL + 3, "places not freed"
                    await asyncio.sleep(0.05)
                freed_after = time.monotonic() - killed_at
                print(f"\nSIGKILL: 30 places of the dead process freed after {freed_after:.2f}s")
                assert freed_after <= TTL + 0.5
                await asyncio.sleep(TTL)  # the survivor's clients keep their places
                assert await live_count(on_survivor, event_id, "viewers") == 10
                assert not heartbeats.done()
                more = [await on_survivor.post(path, headers=bearer(f"n{n}")) for n in range(31)]
                assert Counter(r.status_code for r in more) == {201: 30, 409: 1}
            finally:
                for task in [*renewals, heartbeats]:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                for ws in sockets:
                    await ws.close()


async def _ping(sockets: list[ClientConnection]) -> None:
    while True:
        for ws in sockets:
            await ws.send(json.dumps({"type": "ping"}))
        await asyncio.sleep(TTL / 4)


async def _watch(server: Server, event_id: str, sub: str) -> ClientConnection:
    """A stream socket held open on `server` (it will die with the process)."""
    token = mint(Settings(), sub, Role.ATTENDEE)
    url = f"{server.base_url.replace('http', 'ws')}/ws/events/{event_id}/stream?token={token}"
    ws = await connect(url)
    assert json.loads(await ws.recv())["type"] == "joined"
    return ws


def _kill(server: Server) -> None:
    server.kill()
    assert server.process.returncode == -9


@pytest.mark.parametrize(
    "backend",
    [pytest.param("sqlite", id="sqlite"), pytest.param("postgresql", id="postgresql")],
)
async def test_huddle_last_place_race_over_two_processes(
    backend: str, request: pytest.FixtureRequest, log_dir: Path
) -> None:
    if backend == "postgresql":
        services.need_postgres()
    url: str = request.getfixturevalue(
        "_postgres_session_url" if backend == "postgresql" else "sqlite_url"
    )
    racers = 60
    async with serving(2, url, log_dir, SMALL_POOL) as (_, clients):
        org = bearer(ORGANIZER, Role.ORGANIZER)
        event = await clients[0].post("/api/v1/events", json={"name": "H"}, headers=org)
        huddle = await clients[0].post(
            f"/api/v1/events/{event.json()['id']}/huddles",
            json={"name": "Last seat", "capacity": 5},
            headers=org,
        )
        huddle_id = huddle.json()["id"]
        for n in range(4):
            seated = await clients[n % 2].post(
                f"/api/v1/huddles/{huddle_id}/join", headers=bearer(f"early-{n}")
            )
            assert seated.status_code == 200, seated.text
        start = time.perf_counter()
        answers = await asyncio.gather(
            *(
                clients[n % 2].post(
                    f"/api/v1/huddles/{huddle_id}/join", headers=bearer(f"racer-{n}")
                )
                for n in range(racers)
            )
        )
        elapsed = time.perf_counter() - start
        statuses = Counter(r.status_code for r in answers)
        print(f"\nhuddle race {backend}: {racers} racers in {elapsed:.2f}s, {dict(statuses)}")
        assert statuses == {200: 1, 409: racers - 1}, [r.text for r in answers][:3]
        refusals = [r.json() for r in answers if r.status_code == 409]
        assert all(p["code"] == "huddle_full" and p["huddle_full"] is True for p in refusals)
        final = (await clients[1].get(f"/api/v1/huddles/{huddle_id}")).json()
        assert (final["members"], final["is_full"]) == (5, True)
        members = await clients[0].get(f"/api/v1/huddles/{huddle_id}/members", headers=org)
        assert len(members.json()) == 5
