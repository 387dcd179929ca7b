"""`?queue=1` on the stream's WebSocket and on the REST join routes, against a real server
(in-process presence and Redis): a full stream or booth queues its callers FIFO with
their position told, admits them as places free, and a caller who drops or leaves loses
the place in line."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from headcount.config import Settings
from headcount.domain.identity import Role
from headcount.tokens import mint
from support import services
from support.auth import bearer
from support.servers import Server, running_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=["memory", "redis"])
def server(request: pytest.FixtureRequest, log_dir: Path, sqlite_url: str) -> Iterator[Server]:
    env: dict[str, str] = {}
    if request.param == "redis":
        services.need_redis()
        env = {
            "HEADCOUNT_REDIS_URL": services.REDIS_URL,
            "HEADCOUNT_REDIS_KEY_PREFIX": f"hctest-{secrets.token_hex(6)}",
        }
    with running_server(sqlite_url, log_dir, env) as srv:
        yield srv


@pytest.fixture
async def http(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        yield client


def stream(server: Server, event_id: str, sub: str, *, queue: bool) -> str:
    token = mint(Settings(), sub, Role.ATTENDEE)
    url = server.base_url.replace("http://", "ws://") + f"/ws/events/{event_id}/stream"
    return f"{url}?token={token}" + ("&queue=1" if queue else "")


async def receive(ws: ClientConnection, within: float = 5) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), within))
    return message


async def until(ws: ClientConnection, kind: str, **wanted: Any) -> dict[str, Any]:
    """The next message of `kind` whose fields match `wanted` (position updates repeat)."""
    while True:
        message = await receive(ws)
        if message["type"] == kind and all(message.get(k) == v for k, v in wanted.items()):
            return message


async def test_a_full_stream_queues_fifo_and_a_dropped_viewer_loses_the_place(
    server: Server, http: httpx.AsyncClient
) -> None:
    made = await http.post(
        "/api/v1/events",
        json={"name": "Queue stream", "virtual_settings": {"max_concurrent_viewers": 1}},
        headers=bearer("org-live-queue", Role.ORGANIZER),
    )
    event_id = made.json()["id"]
    async with connect(stream(server, event_id, "first", queue=True)) as first:
        assert (await receive(first))["type"] == "joined"  # room: in at once
        # Each in line before the next arrives, so the arrival order is known; unread
        # position updates are buffered (max_queue=None), so keepalive pongs still get in.
        waiting = []
        for n, name in enumerate(("second", "third", "fourth")):
            ws = await connect(stream(server, event_id, name, queue=True), max_queue=None)
            waiting.append(ws)
            await until(ws, "queued", position=n + 1)
        second, third, fourth = waiting
        try:
            await third.close()  # drops while waiting: out of the line
            await until(fourth, "queued", position=2)
            await first.send(json.dumps({"type": "leave"}))
            joined = await until(second, "joined")
            assert joined["viewers"] == 1
            await until(fourth, "queued", position=1)
            await second.send(json.dumps({"type": "leave"}))
            await until(fourth, "joined")
        finally:
            for ws in (second, third, fourth):
                await ws.close()


async def test_a_full_booth_queues_rest_callers_fifo(
    server: Server, http: httpx.AsyncClient
) -> None:
    """Over REST each ask with `?queue=1` is a look: 202 and the place in line while full,
    the lease once a place frees at the head; a plain join is still refused, and
    `DELETE …/line` gives the place up at once."""
    org = bearer("org-live-queue", Role.ORGANIZER)
    event = await http.post("/api/v1/events", json={"name": "Queue booth"}, headers=org)
    booth = await http.post(
        f"/api/v1/events/{event.json()['id']}/booths",
        json={"name": "Demo", "max_visitors": 1},
        headers=org,
    )
    visits = f"/api/v1/booths/{booth.json()['id']}/visits"
    tag = secrets.token_hex(3)
    a, b, c, d = (bearer(f"{n}-{tag}", Role.ATTENDEE) for n in "abcd")

    first = await http.post(f"{visits}?queue=1", headers=a)
    assert first.status_code == 201  # room, nobody in line: in at once
    in_line = [await http.post(f"{visits}?queue=1", headers=who) for who in (b, c, d)]
    assert [r.status_code for r in in_line] == [202, 202, 202]
    assert [r.json()["position"] for r in in_line] == [1, 2, 3]
    assert in_line[0].headers["Retry-After"] == "1"
    assert [r.json()["queued"] for r in in_line] == [1, 2, 3]
    plain = await http.post(visits, headers=bearer(f"e-{tag}", Role.ATTENDEE))
    assert (plain.status_code, plain.json()["code"]) == (409, "booth_full")

    assert (await http.delete(f"{visits}/line", headers=c)).status_code == 204
    again = await http.post(f"{visits}?queue=1", headers=d)
    assert (again.status_code, again.json()["position"]) == (202, 2)
    # Still full: the head keeps its place and is told so.
    head = await http.post(f"{visits}?queue=1", headers=b)
    assert (head.status_code, head.json()["position"]) == (202, 1)

    left = await http.delete(f"/api/v1/leases/{first.json()['lease_id']}", headers=a)
    assert left.status_code == 204
    # The freed place waits for the head: a newcomer in line and the second behind it
    # do not take it.
    late = await http.post(f"{visits}?queue=1", headers=bearer(f"f-{tag}", Role.ATTENDEE))
    assert (late.status_code, late.json()["position"]) == (202, 3)
    behind = await http.post(f"{visits}?queue=1", headers=d)
    assert (behind.status_code, behind.json()["position"]) == (202, 2)
    got = await http.post(f"{visits}?queue=1", headers=b)
    assert got.status_code == 201
    assert got.json()["holder"] == f"b-{tag}"
    moved = await http.post(f"{visits}?queue=1", headers=d)
    assert (moved.status_code, moved.json()["position"]) == (202, 1)
