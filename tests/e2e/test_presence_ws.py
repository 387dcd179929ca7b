"""The stream WebSocket and the capacity push channel through a real `headcount serve`.

Run against the in-process engine and against Redis, with a 2-second presence TTL and a
1.5-second reconnect grace so the "vanished client" and "dropped socket" cases are
observable quickly.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from headcount.config import Settings
from headcount.domain.identity import Role
from headcount.tokens import mint
from support import services
from support.api import create_stream_event
from support.auth import bearer
from support.servers import Server, running_server

TTL = 2
GRACE = 1.5
ORGANIZER = "org-ws"


@pytest.fixture(scope="module", params=["memory", "redis"])
def server(request: pytest.FixtureRequest, log_dir: Path, sqlite_url: str) -> Iterator[Server]:
    env = {"HEADCOUNT_PRESENCE_TTL": str(TTL), "HEADCOUNT_PRESENCE_GRACE": str(GRACE)}
    with running_server(sqlite_url, log_dir, env | services.engine_env(request.param)) as srv:
        yield srv


@pytest.fixture
async def http(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        yield client


def ws_url(server: Server, path: str, sub: str | None = None) -> str:
    url = server.base_url.replace("http://", "ws://") + path
    if sub is not None:
        url += f"?token={mint(Settings(), sub, Role.ATTENDEE)}"
    return url


async def make_event(http: httpx.AsyncClient, cap: int | None) -> str:
    return await create_stream_event(
        http, cap, headers=bearer(ORGANIZER, Role.ORGANIZER), name="WS"
    )


async def viewers(http: httpx.AsyncClient, event_id: str) -> int:
    """Viewers connected now (places held in grace apart: `held`)."""
    return (await places(http, event_id))[0]


async def places(http: httpx.AsyncClient, event_id: str) -> tuple[int, int]:
    """(viewers connected now, places held in grace for viewers whose socket dropped)."""
    snap = await http.get(f"/api/v1/events/{event_id}/capacity")
    assert snap.status_code == 200, snap.text
    section = snap.json()["viewers"]
    return section["viewers"], section["in_grace"]


async def receive(ws: ClientConnection, within: float = 5) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), within))
    return message


async def closed_with(ws: ClientConnection, within: float = 5) -> int | None:
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(ws.recv(), within)
    return ws.close_code


async def test_join_refuse_ping_and_close(server: Server, http: httpx.AsyncClient) -> None:
    event_id = await make_event(http, cap=2)
    path = f"/ws/events/{event_id}/stream"
    async with connect(ws_url(server, path, "ann")) as ann:
        joined = await receive(ann)
        assert (joined["type"], joined["viewers"], joined["limit"]) == ("joined", 1, 2)
        assert joined["lease"]["holder"] == "ann"
        token = mint(Settings(), "bob", Role.ATTENDEE)
        async with connect(
            ws_url(server, path), additional_headers={"Authorization": f"Bearer {token}"}
        ) as bob:
            assert (await receive(bob))["viewers"] == 2
            async with connect(ws_url(server, path, "cid")) as cid:
                refused = await receive(cid)
                assert (refused["type"], refused["code"]) == ("error", "viewer_limit_reached")
                assert (refused["limit"], refused["viewers"]) == (2, 2)
                assert await closed_with(cid) == 4409
            await bob.send(json.dumps({"type": "ping"}))
            pong = await receive(bob)
            assert (pong["type"], pong["viewers"], pong["limit"]) == ("pong", 2, 2)
            await bob.send("not json")
            assert (await receive(bob))["code"] == "invalid_request"
        # bob closed his socket without a leave: at once he no longer watches, and his
        # place is kept for him through the grace, no TTL wait.
        await asyncio.sleep(0.2)
        assert await places(http, event_id) == (1, 1)
        await ann.send(json.dumps({"type": "leave"}))
        assert (await receive(ann))["type"] == "left"
        assert await closed_with(ann) == 1000
    assert await places(http, event_id) == (0, 1)  # a leave frees at once: no grace
    await asyncio.sleep(GRACE + 0.2)
    assert await places(http, event_id) == (0, 0)


async def test_bad_token_and_unknown_event(server: Server, http: httpx.AsyncClient) -> None:
    event_id = await make_event(http, cap=5)
    async with connect(ws_url(server, f"/ws/events/{event_id}/stream")) as anonymous:
        assert (await receive(anonymous))["code"] == "unauthorized"
        assert await closed_with(anonymous) == 4401
    bad = ws_url(server, f"/ws/events/{event_id}/stream") + "?token=garbage"
    async with connect(bad) as forged:
        assert (await receive(forged))["code"] == "unauthorized"
        assert await closed_with(forged) == 4401
    async with connect(ws_url(server, "/ws/events/evt_nope/stream", "ann")) as lost:
        assert (await receive(lost))["code"] == "not_found"
        assert await closed_with(lost) == 4404


async def test_a_silent_client_is_freed_within_the_ttl_and_its_grace(
    server: Server, http: httpx.AsyncClient
) -> None:
    event_id = await make_event(http, cap=1)
    path = f"/ws/events/{event_id}/stream"
    async with connect(ws_url(server, path, "quiet")) as quiet:
        assert (await receive(quiet))["type"] == "joined"
        started = time.monotonic()
        # The socket stays open but the client never pings: the lease must lapse.
        expired = await receive(quiet, within=TTL + 3)
        waited = time.monotonic() - started
        assert expired["code"] == "lease_expired"
        assert await closed_with(quiet) == 4410
    assert waited <= TTL + 0.5, waited
    assert await places(http, event_id) == (0, 1)  # its grace runs from the lapse
    async with connect(ws_url(server, path, "next")) as nxt:
        assert (await receive(nxt))["code"] == "viewer_limit_reached"
    await asyncio.sleep(started + TTL + GRACE + 0.3 - time.monotonic())
    assert await places(http, event_id) == (0, 0)
    async with connect(ws_url(server, path, "next")) as nxt:
        assert (await receive(nxt))["type"] == "joined"


async def test_a_dropped_socket_keeps_the_place_for_its_viewers_return(
    server: Server, http: httpx.AsyncClient
) -> None:
    event_id = await make_event(http, cap=1)
    path = f"/ws/events/{event_id}/stream"
    ann = await connect(ws_url(server, path, "ann"))
    assert (await receive(ann))["lease"]["place"] == "new"
    ann.transport.abort()  # the connection drops: no leave, not even a close frame
    await asyncio.sleep(0.3)
    assert await places(http, event_id) == (0, 1)
    async with connect(ws_url(server, path, "bob")) as bob:  # the stream is full for him
        refused = await receive(bob)
        assert (refused["code"], refused["viewers"], refused["limit"]) == (
            "viewer_limit_reached",
            1,
            1,
        )
        assert await closed_with(bob) == 4409
    async with connect(ws_url(server, path, "ann")) as again:
        back = await receive(again)
        assert (back["type"], back["lease"]["place"], back["viewers"]) == ("joined", "resumed", 1)
        assert back["lease"]["grace_seconds"] == GRACE
        assert await places(http, event_id) == (1, 0)
        await again.send(json.dumps({"type": "leave"}))
        assert (await receive(again))["type"] == "left"
    assert await places(http, event_id) == (0, 0)  # the leave ended it at once
    async with connect(ws_url(server, path, "bob")) as bob:
        assert (await receive(bob))["lease"]["place"] == "new"


async def test_one_viewer_on_three_sockets_is_one_place(
    server: Server, http: httpx.AsyncClient
) -> None:
    event_id = await make_event(http, cap=1)
    path = f"/ws/events/{event_id}/stream"
    devices = [await connect(ws_url(server, path, "ann")) for _ in range(3)]
    try:
        answers = [await receive(ws) for ws in devices]
        assert [(a["type"], a["viewers"]) for a in answers] == [("joined", 1)] * 3
        assert [a["lease"]["place"] for a in answers] == ["new", "shared", "shared"]
        assert await places(http, event_id) == (1, 0)
        async with connect(ws_url(server, path, "bob")) as bob:
            assert (await receive(bob))["code"] == "viewer_limit_reached"
        await devices[0].send(json.dumps({"type": "leave"}))  # one leaves ...
        assert (await receive(devices[0]))["type"] == "left"
        await devices[1].close()  # ... one closes: two of three gone, the place kept
        await asyncio.sleep(0.2)
        assert await places(http, event_id) == (1, 0)
        async with connect(ws_url(server, path, "bob")) as bob:
            assert (await receive(bob))["code"] == "viewer_limit_reached"
        await devices[2].send(json.dumps({"type": "leave"}))  # the last socket's leave
        assert (await receive(devices[2]))["type"] == "left"
        assert await places(http, event_id) == (0, 0)
    finally:
        for ws in devices:
            await ws.close()


async def test_pinging_keeps_the_place_past_the_ttl(
    server: Server, http: httpx.AsyncClient
) -> None:
    event_id = await make_event(http, cap=1)
    async with connect(ws_url(server, f"/ws/events/{event_id}/stream", "keen")) as keen:
        await receive(keen)
        for _ in range(5):  # 2.5 s > TTL
            await asyncio.sleep(0.5)
            await keen.send(json.dumps({"type": "ping"}))
            assert (await receive(keen))["type"] == "pong"
        assert await viewers(http, event_id) == 1


async def test_capacity_channel_pushes_changes(server: Server, http: httpx.AsyncClient) -> None:
    event_id = await make_event(http, cap=3)
    async with connect(ws_url(server, f"/ws/events/{event_id}/capacity") + "?interval=5") as feed:
        first = await receive(feed)
        assert first["type"] == "snapshot"
        assert first["snapshot"]["viewers"] == {
            "limit": 3,
            "viewers": 0,
            "in_grace": 0,
            "available": 3,
            "is_full": False,
        }
        joined = await http.post(f"/api/v1/events/{event_id}/viewers", headers=bearer("ann"))
        assert joined.status_code == 201, joined.text
        # Pushed by the same process's change signal, well before the 5 s poll.
        update = await receive(feed, within=2)
        assert update["snapshot"]["viewers"]["viewers"] == 1
        left = await http.delete(
            f"/api/v1/leases/{joined.json()['lease_id']}", headers=bearer("ann")
        )
        assert left.status_code == 204
        assert (await receive(feed, within=2))["snapshot"]["viewers"]["viewers"] == 0
    async with connect(ws_url(server, "/ws/events/evt_nope/capacity")) as lost:
        assert (await receive(lost))["code"] == "not_found"
        assert await closed_with(lost) == 4404
