"""The stream-start herd through a real `headcount serve`: hundreds of sockets at once.

* 500 viewers open the stream socket at the same moment against a limit of 200: exactly
  200 are told `joined`, the other 300 get `viewer_limit_reached` and close code 4409,
  and the server counts exactly 200 viewers while they are held.
* A limit lowered while a herd is joining (joins sharing reads of the event, fresh.py)
  binds every join that starts after the PATCH answered.

On the in-process engine and on Redis.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from headcount.config import Settings
from headcount.domain.identity import Role
from headcount.tokens import mint
from support import services
from support.auth import bearer
from support.servers import Server, running_server

pytestmark = pytest.mark.slow

ORGANIZER = "org-herd"
LIMIT_REACHED = 4409


@pytest.fixture(scope="module", params=["memory", "redis"])
def server(request: pytest.FixtureRequest, log_dir: Path, sqlite_url: str) -> Iterator[Server]:
    env = {"HEADCOUNT_PRESENCE_TTL": "120"} | services.engine_env(request.param)
    with running_server(sqlite_url, log_dir, env) as srv:
        yield srv


@pytest.fixture
async def http(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.base_url + "/api/v1", timeout=60) as client:
        yield client


async def make_event(http: httpx.AsyncClient, cap: int) -> str:
    made = await http.post(
        "/events",
        json={"name": "Herd", "virtual_settings": {"max_concurrent_viewers": cap}},
        headers=bearer(ORGANIZER, Role.ORGANIZER),
    )
    assert made.status_code == 201, made.text
    event_id: str = made.json()["id"]
    return event_id


async def counted(http: httpx.AsyncClient, event_id: str) -> int:
    snap = await http.get(f"/events/{event_id}/capacity")
    assert snap.status_code == 200, snap.text
    viewers: int = snap.json()["viewers"]["viewers"]
    return viewers


class Herd:
    """Sockets opened by `open`, held until the herd's exit."""

    def __init__(self, server: Server, event_id: str, held: AsyncExitStack) -> None:
        self.url = server.base_url.replace("http://", "ws://") + f"/ws/events/{event_id}/stream"
        self.event_id = event_id
        self.held = held
        self.settings = Settings()

    async def open_all(self, prefix: str, count: int) -> list[tuple[str, float]]:
        return await asyncio.gather(*(self.open(f"{prefix}{i}") for i in range(count)))

    async def open(self, who: str) -> tuple[str, float]:
        """('joined' or the close code, when the handshake started)."""
        token = mint(self.settings, who, Role.ATTENDEE)
        started = time.monotonic()
        ws: ClientConnection = await self.held.enter_async_context(
            connect(f"{self.url}?token={token}", open_timeout=60, compression=None)
        )
        first = json.loads(await asyncio.wait_for(ws.recv(), 60))
        if first["type"] == "joined":
            return "joined", started
        assert first["code"] == "viewer_limit_reached", first
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 60)
        return str(ws.close_code), started


@asynccontextmanager
async def herd_on(server: Server, http: httpx.AsyncClient, cap: int) -> AsyncIterator[Herd]:
    """A stream limited to `cap`, and a herd whose sockets close when the block ends."""
    event_id = await make_event(http, cap)
    async with AsyncExitStack() as held:
        yield Herd(server, event_id, held)


async def test_five_hundred_at_once_admit_exactly_the_limit(
    server: Server, http: httpx.AsyncClient
) -> None:
    async with herd_on(server, http, 200) as herd:
        outcomes = [outcome for outcome, _ in await herd.open_all("h", 500)]
        assert outcomes.count("joined") == 200
        assert outcomes.count(str(LIMIT_REACHED)) == 300
        assert await counted(http, herd.event_id) == 200  # never over: the store agrees


async def test_a_limit_lowered_during_a_herd_binds_every_later_join(
    server: Server, http: httpx.AsyncClient
) -> None:
    async with herd_on(server, http, 400) as herd:
        event_id = herd.event_id
        first = await herd.open_all("a", 150)
        assert [o for o, _ in first].count("joined") == 150

        async def trickle(start: int) -> list[tuple[str, float]]:
            """Joins arriving while others' reads are in flight, before and after."""
            found = []
            for i in range(start, start + 30):
                found.append(await herd.open(f"b{i}"))
            return found

        joining = [asyncio.ensure_future(trickle(n * 30)) for n in range(5)]
        await asyncio.sleep(0.05)
        lowered = await http.patch(
            f"/events/{event_id}",
            json={"virtual_settings": {"max_concurrent_viewers": 100}},
            headers=bearer(ORGANIZER, Role.ORGANIZER),
        )
        assert lowered.status_code == 200, lowered.text
        patched = time.monotonic()
        after = await herd.open_all("c", 100)
        during = [answer for batch in await asyncio.gather(*joining) for answer in batch]
        late = [outcome for outcome, started in during + after if started > patched]
        assert len(late) >= 100
        # 150+ are in and the limit is 100: nobody who asked after the PATCH gets in.
        assert set(late) == {str(LIMIT_REACHED)}
        assert await counted(http, event_id) <= 400
