"""Reconnect grace through real server processes sharing Redis.

* Drop and return: 200 viewers at a limit of 200, watching over the stream WebSocket on
  two processes, lose their sockets without a leave (half abruptly, half closed) while
  300 newcomers hammer the join over REST and WebSocket on both. Every viewer who
  returns within grace, through the *other* process, gets their place back; no newcomer
  gets a held place; the places never exceed 200; after grace the 50 places nobody came
  back for go to newcomers, exactly.
* SIGKILL of the process holding viewers' sockets: their places are held through the
  grace (a viewer reconnecting to the surviving process gets theirs back, full or not;
  newcomers are refused), then freed; nothing survives TTL + grace.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from headcount.config import Settings
from headcount.domain.identity import Role
from headcount.tokens import mint
from support.api import client, create_stream_event
from support.auth import bearer
from support.servers import Server, presence_env, running_servers

pytestmark = pytest.mark.slow

ORGANIZER = "org-grace"


@contextlib.asynccontextmanager
async def two_servers(
    database: str, log_dir: Path, env: dict[str, str]
) -> AsyncIterator[tuple[list[Server], list[httpx.AsyncClient]]]:
    with running_servers(2, database, log_dir, env) as servers:
        clients = [client(s.base_url, connections=50) for s in servers]
        try:
            yield servers, clients
        finally:
            for http in clients:
                await http.aclose()


async def stream_event(http: httpx.AsyncClient, cap: int) -> str:
    return await create_stream_event(
        http, cap, headers=bearer(ORGANIZER, Role.ORGANIZER), name="Grace"
    )


def stream_url(server: Server, event_id: str, sub: str) -> str:
    token = mint(Settings(), sub, Role.ATTENDEE)
    base = server.base_url.replace("http://", "ws://")
    return f"{base}/ws/events/{event_id}/stream?token={token}"


async def watch(server: Server, event_id: str, sub: str) -> tuple[ClientConnection, Any]:
    """A stream socket and its first message (joined, or the refusal)."""
    ws = await connect(stream_url(server, event_id, sub))
    return ws, json.loads(await asyncio.wait_for(ws.recv(), 30))


async def places(http: httpx.AsyncClient, event_id: str) -> tuple[int, int]:
    """(viewers connected now, places held in grace)."""
    snap = await http.get(f"/api/v1/events/{event_id}/capacity")
    assert snap.status_code == 200, snap.text
    section = snap.json()["viewers"]
    return section["viewers"], section["in_grace"]


async def until(what: Any, want: tuple[int, int], within: float) -> float:
    """Poll `what()` until it returns `want`; returns when that was first seen."""
    deadline = time.monotonic() + within
    while (seen := await what()) != want:
        assert time.monotonic() < deadline, f"{seen} is not {want} after {within}s"
        await asyncio.sleep(0.05)
    return time.monotonic()


async def test_drop_and_return_over_the_websocket_across_two_processes(
    shared_postgres: str, log_dir: Path
) -> None:
    limit, grace = 200, 20.0
    async with two_servers(shared_postgres, log_dir, presence_env(60, grace=grace)) as (
        servers,
        https,
    ):
        event_id = await stream_event(https[0], limit)
        viewers = [f"v{n}" for n in range(limit)]
        sockets: dict[str, ClientConnection] = {}
        home: dict[str, int] = {}
        for n, sub in enumerate(viewers):
            home[sub] = n % 2
            ws, hello = await watch(servers[n % 2], event_id, sub)
            assert hello["type"] == "joined", hello
            sockets[sub] = ws
        assert await places(https[1], event_id) == (limit, 0)
        refused_ws, refused = await watch(servers[0], event_id, "early-bird")
        assert refused["code"] == "viewer_limit_reached"
        await refused_ws.close()

        # The drop: no leave. Half lose the connection outright, half close it.
        dropping = time.monotonic()
        for n, sub in enumerate(viewers):
            if n % 2:
                sockets[sub].transport.abort()
            else:
                await sockets[sub].close()
        await until(lambda: places(https[0], event_id), (0, limit), within=5)

        rng = random.Random(18)
        returning = rng.sample(viewers, 150)
        newcomers = [f"new{n}" for n in range(300)]
        peak: list[int] = []
        outcomes: Counter[str] = Counter()
        back: dict[str, ClientConnection] = {}
        resumed: list[str] = []

        async def newcomer(n: int, sub: str) -> None:
            on = rng.randrange(2)
            if n % 2:  # over REST ...
                answer = await https[on].post(
                    f"/api/v1/events/{event_id}/viewers", headers=bearer(sub)
                )
                body = answer.json()
                outcomes[f"rest {answer.status_code} {body.get('code')}"] += 1
                peak.append(body["viewers"] if answer.status_code == 409 else body["occupancy"])
            else:  # ... and over the socket
                ws, hello = await watch(servers[on], event_id, sub)
                outcomes[f"ws {hello['type']} {hello.get('code')}"] += 1
                peak.append(hello["viewers"])
                await ws.close()

        async def hammer() -> int:
            """Rounds of all 300 newcomers: while the returns run (at least one), and
            more while the clock allows, every round well inside the grace."""
            rounds = 0
            while True:
                required = rounds < 1 or not returns.done()
                spare = rounds < 3 and time.monotonic() < dropping + grace / 2
                if not (required or spare):
                    return rounds
                assert time.monotonic() < dropping + grace - 3, "too slow to hammer in grace"
                await asyncio.gather(*(newcomer(n, sub) for n, sub in enumerate(newcomers)))
                rounds += 1

        async def come_back(sub: str) -> None:
            ws, hello = await watch(servers[1 - home[sub]], event_id, sub)  # the other one
            assert (hello["type"], hello["lease"]["place"]) == ("joined", "resumed"), hello
            peak.append(hello["viewers"])
            back[sub] = ws
            resumed.append(sub)

        async def sample() -> None:
            while not returns.done():
                for http in https:
                    now, held = await places(http, event_id)
                    peak.append(now + held)

        returns = asyncio.gather(*(come_back(sub) for sub in returning))
        rounds, _, _ = await asyncio.gather(hammer(), returns, sample())
        phase = time.monotonic() - dropping
        print(
            f"\ndrop and return: 150 of 200 back in {phase:.2f}s (grace {grace}s), "
            f"{rounds} rounds of 300 newcomers: {dict(outcomes)}"
        )
        assert phase < grace, "the returns took longer than the grace"
        assert sorted(resumed) == sorted(returning)
        assert outcomes == {
            "rest 409 viewer_limit_reached": 150 * rounds,
            "ws error viewer_limit_reached": 150 * rounds,
        }, "a newcomer got a place held for someone else"
        assert max(peak) == limit
        for http in https:
            assert await places(http, event_id) == (150, 50)

        # After the grace, the 50 places nobody came back for go to newcomers: exactly.
        await until(lambda: places(https[1], event_id), (150, 0), within=grace + 5)
        late = await asyncio.gather(
            *(
                https[n % 2].post(f"/api/v1/events/{event_id}/viewers", headers=bearer(sub))
                for n, sub in enumerate(newcomers)
            )
        )
        assert Counter(r.status_code for r in late) == {201: 50, 409: 250}
        assert {r.json()["place"] for r in late if r.status_code == 201} == {"new"}
        assert await places(https[0], event_id) == (limit, 0)
        for ws in back.values():
            await ws.close()


async def _ping(sockets: list[ClientConnection], every: float) -> None:
    while True:
        for ws in sockets:
            await ws.send(json.dumps({"type": "ping"}))
        await asyncio.sleep(every)


async def _renew(http: httpx.AsyncClient, leases: list[tuple[str, str]], every: float) -> None:
    while True:
        for holder, lease_id in leases:
            beat = await http.post(f"/api/v1/leases/{lease_id}/heartbeat", headers=bearer(holder))
            assert beat.status_code == 200, beat.text
        await asyncio.sleep(every)


async def test_sigkill_holds_the_dead_process_viewers_places_for_the_grace_then_frees_them(
    shared_postgres: str, log_dir: Path
) -> None:
    ttl, grace, cap = 2, 4.0, 10
    async with two_servers(shared_postgres, log_dir, presence_env(ttl, grace=grace)) as (
        servers,
        https,
    ):
        doomed, survivor = servers
        on_survivor = https[1]
        event_id = await stream_event(on_survivor, cap)
        watchers = [await watch(doomed, event_id, f"w{n}") for n in range(5)]
        assert all(hello["type"] == "joined" for _, hello in watchers)
        kept: list[tuple[str, str]] = []
        for n in range(5):
            got = await on_survivor.post(
                f"/api/v1/events/{event_id}/viewers", headers=bearer(f"s{n}")
            )
            assert got.status_code == 201, got.text
            kept.append((f"s{n}", got.json()["lease_id"]))
        tasks = [
            asyncio.create_task(_ping([ws for ws, _ in watchers], ttl / 4)),
            asyncio.create_task(_renew(on_survivor, kept, ttl / 4)),
        ]
        pings, beats = tasks
        try:
            assert await places(on_survivor, event_id) == (cap, 0)
            await asyncio.sleep(ttl)  # the pings keep everything live
            assert await places(on_survivor, event_id) == (cap, 0)

            pings.cancel()
            doomed.kill()  # the crash: no drop, no leave; the leases run out on their own
            killed = time.monotonic()
            # Until the last ping's lease lapses and its grace is over, nobody new gets in.
            held_from = await until(lambda: places(on_survivor, event_id), (5, 5), ttl + 2)
            print(f"\nSIGKILL: 5 sockets' places in grace {held_from - killed:.2f}s after")
            # w0 comes back through the survivor within grace: the stream is full, yet
            # the place is w0's.
            ws, hello = await watch(survivor, event_id, "w0")
            assert (hello["type"], hello["lease"]["place"]) == ("joined", "resumed"), hello
            tasks.append(asyncio.create_task(_ping([ws], ttl / 4)))
            # The last ping renewed no earlier than a ping interval before the kill: its
            # place is held at least until then + TTL + grace. Until then, nobody new.
            while time.monotonic() < killed + ttl + grace - ttl / 4 - 0.3:
                refused = await on_survivor.post(
                    f"/api/v1/events/{event_id}/viewers", headers=bearer("newcomer")
                )
                assert refused.status_code == 409, refused.text
                await asyncio.sleep(0.2)

            # Past TTL + grace nothing of the dead process is left (the last ping was sent
            # before the kill, so its lease ran out by TTL after it).
            await asyncio.sleep(killed + ttl + grace + 0.3 - time.monotonic())
            assert await places(on_survivor, event_id) == (6, 0)
            print(f"SIGKILL: no ghost {ttl + grace + 0.3:.1f}s after the kill (TTL {ttl}s + grace)")
            more = [
                await on_survivor.post(
                    f"/api/v1/events/{event_id}/viewers", headers=bearer(f"n{n}")
                )
                for n in range(5)
            ]
            assert Counter(r.status_code for r in more) == {201: 4, 409: 1}
            assert not beats.done()
            assert await places(on_survivor, event_id) == (cap, 0)
            await ws.close()
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
