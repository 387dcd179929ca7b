"""The waiting room across two `headcount serve` processes sharing one database and Redis.

* FIFO: 2,000 visitors join in a known order, alternating processes, before the room
  opens; once it opens, their passes' admission numbers follow exactly that order.
* WebSocket: a waiting visitor's socket shows the place, then the pass once a slot frees.
* Sold out: with 500 queued on sockets spread over both processes, every socket shows
  `sold_out` within 2 s of the last ticket being sold.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from headcount.domain.identity import Role
from support import services
from support.api import create_event_with_stock
from support.auth import bearer
from support.servers import Server, serving

pytestmark = [pytest.mark.slow, pytest.mark.redis]
ORG = "org-queue-e2e"
FIFO_VISITORS = 2_000
SOLD_OUT_QUEUED = 500


def queue_env() -> dict[str, str]:
    """Both servers on the shared Redis, under a key prefix of this test's own."""
    services.need_redis()
    return {
        "HEADCOUNT_REDIS_URL": services.REDIS_URL,
        "HEADCOUNT_REDIS_KEY_PREFIX": f"hctest-{secrets.token_hex(6)}",
    }


async def open_room(http: httpx.AsyncClient, stock: int, **terms: Any) -> tuple[str, str]:
    event_id, (tt,) = await create_event_with_stock(http, stock, organizer=ORG)
    body = {
        "opens_at": (datetime.now(UTC) - timedelta(seconds=1)).isoformat(),
        "active_limit": 1,
        "admit_per_minute": 60_000,
        **terms,
    }
    made = await http.post(
        f"/api/v1/events/{event_id}/waiting-room", json=body, headers=bearer(ORG, Role.ORGANIZER)
    )
    assert made.status_code == 201, made.text
    return event_id, tt


async def join(http: httpx.AsyncClient, event_id: str, who: str) -> dict[str, Any]:
    joined = await http.post(f"/api/v1/events/{event_id}/queue", headers=bearer(who))
    assert joined.status_code == 200, joined.text
    ticket: dict[str, Any] = joined.json()
    return ticket


def admission_of(queue_pass: str) -> int:
    part = queue_pass.split(".")[3]
    return int(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)).decode())


def ws_url(server: Server, ticket: str) -> str:
    return server.base_url.replace("http://", "ws://") + f"/ws/queue/{ticket}"


async def receive(ws: ClientConnection, within: float = 10) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), within))
    return message


async def test_fifo_admission_follows_arrival_across_two_processes(
    sqlite_url: str, log_dir: Path
) -> None:
    async with serving(2, sqlite_url, log_dir, queue_env()) as (_servers, clients):
        opens_at = datetime.now(UTC) + timedelta(hours=1)
        event_id, _ = await open_room(
            clients[0],
            10,
            opens_at=opens_at.isoformat(),
            active_limit=100_000,
            admit_per_minute=600_000,
        )
        tickets = []
        for n in range(FIFO_VISITORS):
            joined = await join(clients[n % 2], event_id, f"fifo-{n}")
            assert joined["position"] == n + 1
            tickets.append(joined["ticket"])
        opened = await clients[1].patch(
            f"/api/v1/events/{event_id}/waiting-room",
            json={"opens_at": (datetime.now(UTC) - timedelta(seconds=1)).isoformat()},
            headers=bearer(ORG, Role.ORGANIZER),
        )
        assert opened.status_code == 200
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            room = await clients[0].get(
                f"/api/v1/events/{event_id}/waiting-room", headers=bearer(ORG, Role.ORGANIZER)
            )
            if room.json()["figures"]["admitted_total"] == FIFO_VISITORS:
                break
            await asyncio.sleep(0.5)
        admissions = []
        for n, ticket in enumerate(tickets):
            seen = (await clients[n % 2].get(f"/api/v1/queue/{ticket}")).json()
            assert seen["state"] == "admitted", seen
            admissions.append(admission_of(seen["queue_pass"]))
        assert admissions == list(range(1, FIFO_VISITORS + 1))


async def test_the_socket_counts_down_then_hands_over_the_pass(
    sqlite_url: str, log_dir: Path
) -> None:
    async with serving(2, sqlite_url, log_dir, queue_env()) as (servers, clients):
        event_id, tt = await open_room(clients[0], 10)
        first = await join(clients[0], event_id, "w-0")
        second = await join(clients[1], event_id, "w-1")
        third = await join(clients[0], event_id, "w-2")
        assert first["state"] == "admitted"
        async with connect(ws_url(servers[1], third["ticket"])) as ws:
            seen = await receive(ws)
            assert (seen["type"], seen["ticket"]["position"]) == ("ticket", 2)
            left = await clients[0].delete(
                f"/api/v1/queue/{first['ticket']}", headers=bearer("w-0")
            )
            assert left.json()["state"] == "gone"
            moved = await receive(ws)  # second is admitted: third moves up
            assert moved["ticket"]["position"] == 1
            await clients[1].delete(f"/api/v1/queue/{second['ticket']}", headers=bearer("w-1"))
            admitted = await receive(ws)
            assert admitted["ticket"]["state"] == "admitted"
            queue_pass = admitted["ticket"]["queue_pass"]
        line = {"event_id": event_id, "items": [{"ticket_type_id": tt, "quantity": 1}]}
        made = await clients[0].post(
            "/api/v1/orders", json={**line, "queue_pass": queue_pass}, headers=bearer("w-2")
        )
        assert made.status_code == 201, made.text


async def test_everyone_queued_learns_of_the_sell_out_within_two_seconds(
    sqlite_url: str, log_dir: Path
) -> None:
    async with serving(2, sqlite_url, log_dir, queue_env(), connections=200) as (servers, clients):
        sockets: list[ClientConnection] = []
        try:
            event_id, tt = await open_room(clients[0], 1)
            buyer = await join(clients[0], event_id, "buyer")
            assert buyer["state"] == "admitted"
            tickets = []
            for n in range(SOLD_OUT_QUEUED):
                joined = await join(clients[n % 2], event_id, f"so-{n}")
                tickets.append(joined["ticket"])
            for n, ticket in enumerate(tickets):
                sockets.append(await connect(ws_url(servers[n % 2], ticket)))
            firsts = await asyncio.gather(*(receive(ws) for ws in sockets))
            assert {f["ticket"]["state"] for f in firsts} == {"waiting"}

            line = {"event_id": event_id, "items": [{"ticket_type_id": tt, "quantity": 1}]}
            made = await clients[0].post(
                "/api/v1/orders",
                json={**line, "queue_pass": buyer["queue_pass"]},
                headers=bearer("buyer"),
            )
            assert made.status_code == 201, made.text
            paid = await clients[1].post(
                f"/api/v1/orders/{made.json()['id']}/confirm", headers=bearer(ORG, Role.ORGANIZER)
            )
            assert paid.status_code == 200
            sold_at = time.monotonic()

            async def told(ws: ClientConnection) -> float:
                last: dict[str, Any] = {}
                try:
                    while True:
                        last = await receive(ws, within=5)
                        if last["ticket"]["state"] == "sold_out":
                            return time.monotonic() - sold_at
                except TimeoutError:
                    pytest.fail(f"never told; last message {last}")

            delays = await asyncio.gather(*(told(ws) for ws in sockets))
            print(f"sold out: {len(delays)} sockets told, slowest after {max(delays):.2f} s")
            assert max(delays) < 2.0
        finally:
            for ws in sockets:
                await ws.close()


async def test_a_killed_process_loses_nobodys_place_and_admits_nobody_twice(
    sqlite_url: str, log_dir: Path
) -> None:
    """300 queued across two processes; passes lapse after 1 s idle so the limit of 20
    recycles. One process is SIGKILLed mid-admission; the survivor admits everyone left,
    each exactly once (300 admission numbers for 300 visitors, nobody still queued), and
    the shop never held more than 20."""
    visitors, limit = 300, 20
    async with serving(2, sqlite_url, log_dir, queue_env()) as (servers, clients):
        organizer = bearer(ORG, Role.ORGANIZER)
        opens_at = datetime.now(UTC) + timedelta(hours=1)
        event_id, _ = await open_room(
            clients[0],
            10,
            opens_at=opens_at.isoformat(),
            active_limit=limit,
            admit_per_minute=1_200,
            pass_ttl_seconds=1,
        )
        for n in range(visitors):
            await join(clients[n % 2], event_id, f"kill-{n}")
        path = f"/api/v1/events/{event_id}/waiting-room"
        now = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
        assert (await clients[0].patch(path, json={"opens_at": now}, headers=organizer)).is_success
        peak, killed = 0, False
        deadline = time.monotonic() + 90
        figures: dict[str, Any] = {}
        while time.monotonic() < deadline:
            figures = (await clients[1].get(path, headers=organizer)).json()["figures"]
            peak = max(peak, figures["active_buyers"])
            if not killed and figures["admitted_total"] >= 60:
                servers[0].kill()
                killed = True
            if figures["queued"] == 0 and figures["active_buyers"] == 0:
                break
            await asyncio.sleep(0.1)
        assert killed
        assert (figures["queued"], figures["admitted_total"]) == (0, visitors), figures
        assert peak <= limit
