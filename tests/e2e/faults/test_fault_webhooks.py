"""Webhooks through `headcount relay` processes while things break.

Two relays send (the API server runs none); changes keep coming. One relay is SIGKILLed
while it holds a lease (mid-delivery) and a new one started; the receiver is down for
30 s and comes back; the private PostgreSQL is restarted once. Afterwards the receiver,
after dedupe by `webhook-id`, holds exactly the committed changes, in position order per
event, and no two requests for one delivery were ever in flight at once.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from headcount.domain.identity import Role
from support.api import client
from support.auth import bearer
from support.private_services import PrivatePostgres
from support.receiver import Receiver, running_receiver
from support.servers import clean_env, running_server, stop
from support.webhook_checks import (
    WEBHOOK_SETTINGS,
    Writer,
    assert_received_exactly,
    register,
    runtime_for,
    wait_for_everything,
)

pytestmark = pytest.mark.slow
ORG = bearer("org-fault-hooks", Role.ORGANIZER)
DOWN_SECONDS = 30.0


def start_relay(database_url: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "headcount", "relay", "--log-level", "warning"],
            env=clean_env(database_url, WEBHOOK_SETTINGS),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver(delay=0.03) as got:
        yield got


async def _leases_of(database_url: str, pid: int) -> int:
    """Deliveries the relay process `pid` holds a lease on right now."""
    rt = runtime_for(database_url)
    try:
        async with rt.db.snapshot() as tx:
            held = await tx.scalar(
                text(
                    "SELECT count(*) FROM webhook_deliveries "
                    "WHERE leased_until IS NOT NULL AND leased_by LIKE :who"
                ),
                {"who": f"%:{pid}:%"},
            )
        return int(held or 0)
    finally:
        await rt.close()


async def test_relays_killed_receiver_down_database_restarted_nothing_lost(
    fault_database: str, private_pg: PrivatePostgres, log_dir: Path, receiver: Receiver
) -> None:
    url = fault_database
    rt = runtime_for(url)
    relays: list[subprocess.Popen[bytes]] = []
    log = log_dir / "relays.log"
    try:
        with running_server(
            url, log_dir, {**WEBHOOK_SETTINGS, "HEADCOUNT_WEBHOOK_RELAY": "0"}
        ) as srv:
            async with client(srv.base_url) as http:
                await register(http, receiver, ORG)
                events = [
                    (await http.post("/api/v1/events", json={"name": f"F{n}"}, headers=ORG)).json()[
                        "id"
                    ]
                    for n in range(5)
                ]
            relays = [start_relay(url, log), start_relay(url, log)]
            writer = Writer(rt, events)
            writing = asyncio.create_task(writer.run(900, per_second=20))

            # 1. SIGKILL a relay while it holds a lease.
            victim = relays[0]
            deadline = time.monotonic() + 60
            while await _leases_of(url, victim.pid) == 0:
                assert time.monotonic() < deadline, "the relay never took a lease"
                await asyncio.sleep(0.01)
            victim.kill()
            victim.wait(10)
            orphaned = await _leases_of(url, victim.pid)
            relays.append(start_relay(url, log))
            await asyncio.sleep(3)

            # 2. The receiver goes away for 30 s; 3. PostgreSQL restarts meanwhile.
            receiver.stop()
            down_at = time.monotonic()
            await asyncio.sleep(8)
            private_pg.stop("fast")
            await asyncio.sleep(2)
            private_pg.start()
            await asyncio.sleep(max(0.0, DOWN_SECONDS - (time.monotonic() - down_at)))
            receiver.start()

            await writing
            expected = await wait_for_everything(rt, receiver, events, within=150)
        assert orphaned >= 1, "the kill did not land mid-delivery"
        assert_received_exactly(receiver, expected, writer.rolled_back)
        assert receiver.overlapping() == [], "one delivery was in flight twice at once"
        assert len(expected) > 400
        assert all(r.poll() is None for r in relays[1:]), log.read_text()[-3000:]
        print(
            f"\nwebhook faults: {len(expected)} changes, {len(receiver.snapshot())} requests "
            f"({len(receiver.snapshot()) - len(expected)} repeats), {orphaned} leases orphaned "
            f"by the kill, {writer.failed} writes lost to the restart"
        )
    finally:
        for relay in relays:
            stop(relay, grace=10)
        await rt.close()
