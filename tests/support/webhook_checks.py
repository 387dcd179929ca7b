"""What webhook end-to-end tests share: registering an endpoint, extra change writers, and
the exact comparison of what a receiver got with what the database committed."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx

from headcount.config import Settings
from headcount.domain.changes import decode_cursor
from headcount.domain.errors import ServiceUnavailable, Timeout
from headcount.ledger import changes
from headcount.runtime import Runtime
from support.changes import noted
from support.receiver import Receiver

# Servers and relays that deliver to a receiver on 127.0.0.1, quickly, in tests.
WEBHOOK_SETTINGS = {
    "HEADCOUNT_WEBHOOK_ALLOW_PRIVATE": "1",
    "HEADCOUNT_WEBHOOK_TIMEOUT": "2",
    "HEADCOUNT_WEBHOOK_RETRY_CAP": "2",
    "HEADCOUNT_WEBHOOK_POLL_INTERVAL": "0.05",
}


async def register(
    http: httpx.AsyncClient, receiver: Receiver, headers: dict[str, str], **fields: object
) -> str:
    made = await http.post(
        "/api/v1/webhooks", json={"url": receiver.url, **fields}, headers=headers
    )
    assert made.status_code == 201, made.text
    receiver.secrets.append(made.json()["secret"])
    hook: str = made.json()["id"]
    return hook


@dataclass
class Writer:
    """Records changes straight into the log, as decisions do, some of them rolled back.

    Tolerates the database going away (a restart): a transaction that failed is simply
    not counted as written; what counts is what the database holds at the end.
    """

    rt: Runtime
    event_ids: Sequence[str]
    rolled_back: set[str] = field(default_factory=set)
    attempted: int = 0
    failed: int = 0

    async def write(self, label: str, *, roll_back: bool) -> None:
        event_id = self.event_ids[hash(label) % len(self.event_ids)]
        self.attempted += 1
        if roll_back:
            self.rolled_back.add(label)  # never committed, however the attempt ends
        try:
            await noted(self.rt, event_id, label, roll_back=roll_back)
        except (ServiceUnavailable, Timeout, OSError):
            self.failed += 1

    async def run(self, count: int, *, per_second: float, prefix: str = "w") -> None:
        rng = random.Random(count)
        for n in range(count):
            await self.write(f"{prefix}{n}", roll_back=rng.random() < 0.15)
            await asyncio.sleep(1 / per_second)


def runtime_for(database_url: str) -> Runtime:
    return Runtime.from_settings(
        Settings(database_url=database_url, env="test", db_statement_timeout_ms=5000)
    )


@dataclass(frozen=True)
class Committed:
    position: int
    event_id: str
    label: str | None


async def committed(rt: Runtime, event_ids: Sequence[str]) -> tuple[list[Committed], bool]:
    """The positioned changes of these events, and whether any change is still unpositioned."""
    async with rt.db.snapshot() as tx:
        rows = await changes.page(tx, after=0, limit=1_000_000, event_ids=list(event_ids))
        waiting = await changes.has_unsequenced(tx)
    return [
        Committed(int(r.position or 0), r.event_id, r.payload.get("label")) for r in rows
    ], waiting


async def wait_for_everything(
    rt: Runtime, receiver: Receiver, event_ids: Sequence[str], *, within: float
) -> list[Committed]:
    """Until the receiver holds every committed change of these events (or time is up)."""
    deadline = time.monotonic() + within
    while True:
        expected, waiting = await committed(rt, event_ids)
        got = {decode_cursor(r.body["cursor"]) for r in receiver.first_seen()}
        if not waiting and {c.position for c in expected} <= got:
            return expected
        if time.monotonic() > deadline:
            missing = len({c.position for c in expected} - got)
            raise AssertionError(f"{missing} of {len(expected)} changes never arrived")
        await asyncio.sleep(0.25)


def assert_received_exactly(
    receiver: Receiver, expected: list[Committed], rolled_back: set[str]
) -> None:
    """After dedupe by webhook-id: exactly the committed set, in position order per event,
    one stable id per change, nothing that was rolled back, nothing unverifiable."""
    assert receiver.rejected == [], f"{len(receiver.rejected)} requests failed verification"
    first = receiver.first_seen()
    positions = [decode_cursor(r.body["cursor"]) for r in first]
    assert len(positions) == len(set(positions)), "one change arrived under two webhook-ids"
    assert sorted(positions) == sorted(c.position for c in expected)
    by_event: dict[str, list[int]] = {}
    for got, position in zip(first, positions, strict=True):
        by_event.setdefault(got.body["event_id"], []).append(position)
    for event_id, seen in by_event.items():
        assert seen == sorted(seen), f"event {event_id} arrived out of order"
    labels = {r.body["payload"].get("label") for r in first}
    assert not labels & rolled_back, "a rolled-back change was delivered"
    ids_per_change: dict[int, set[str]] = {}
    for got in receiver.snapshot():
        ids_per_change.setdefault(decode_cursor(got.body["cursor"]), set()).add(got.webhook_id)
    assert all(len(ids) == 1 for ids in ids_per_change.values())
