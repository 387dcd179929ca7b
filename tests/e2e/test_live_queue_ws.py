"""`?queue=1` on the stream's WebSocket, against a real server (in-process presence and
Redis): a full stream queues viewers FIFO with their position pushed, admits them as
places free, and a queued viewer who drops or leaves loses the place in line."""

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
