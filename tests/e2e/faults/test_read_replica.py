"""A streaming replica (`pg_basebackup -R` on a second port) serves the reads that may lag.

* Capacity snapshots and listings are read on the replica (its statement log shows the
  `headcount-read` connections), and say how far behind they were.
* Admissions, and a caller's reads of one thing (GET an event), never reach it.
* A replica whose replay is paused falls behind: within `HEADCOUNT_READ_MAX_LAG` it still
  serves (stale figures, lag reported); past it the primary serves, fresh.
* A stopped replica is skipped at once; back up, it serves again.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import LiteralString

import psycopg
import pytest

from headcount.capacity import events, registrations, snapshot, tickets
from headcount.capacity.events import EventDraft
from headcount.capacity.registrations import RegistrationDraft
from headcount.config import Settings
from headcount.ledger.migrate import upgrade
from headcount.ledger.replica import RECHECK_SECONDS
from headcount.runtime import Runtime
from support.auth import attendee, organizer
from support.private_services import (
    PrivatePostgres,
    postgres_available,
    private_postgres,
    private_replica,
)

pytestmark = pytest.mark.slow

MAX_LAG = 2.0
ORG = organizer("org-replica")


@dataclass
class Pair:
    primary: PrivatePostgres
    replica: PrivatePostgres
    name: str

    @property
    def primary_url(self) -> str:
        return self.primary.admin_dsn(self.name)

    @property
    def replica_url(self) -> str:
        return self.replica.admin_dsn(self.name)

    def replica_reads(self) -> int:
        """Statements the replica ran for Headcount's read connections so far."""
        return sum(
            1
            for line in self.replica.log.read_text(errors="replace").splitlines()
            if "app=headcount-read" in line and ("statement:" in line or "execute" in line)
        )

    def on_replica(self, sql: LiteralString, *params: object) -> object:
        with psycopg.connect(self.replica.admin_dsn(self.name), autocommit=True) as conn:
            row = conn.execute(sql, params).fetchone()
        return row[0] if row else None


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    if not postgres_available():
        pytest.skip("PostgreSQL server binaries are not installed")
    with private_postgres() as primary:
        name = f"hc_replica_{secrets.token_hex(4)}"
        upgrade(primary.create_database(name))
        with private_replica(primary) as replica:
            yield Pair(primary, replica, name)


@pytest.fixture
async def rt(pair: Pair) -> AsyncIterator[Runtime]:
    if not pair.replica.is_running():
        pair.replica.start()
    settings = Settings(
        database_url=pair.primary_url,
        database_read_url=pair.replica_url,
        read_max_lag=MAX_LAG,
        env="test",
    )
    found = Runtime.from_settings(settings)
    try:
        yield found
    finally:
        await found.close()


async def _caught_up(pair: Pair, event_id: str) -> None:
    """Until the replica has replayed the event (replication is asynchronous)."""
    deadline = time.monotonic() + 10
    while not pair.on_replica("SELECT count(*) FROM events WHERE id = %s", event_id):
        assert time.monotonic() < deadline, "the replica never caught up"
        await asyncio.sleep(0.05)


async def _event(rt: Runtime, pair: Pair, limit: int = 50) -> str:
    made = await events.create_event(rt, ORG, EventDraft(name="Replica", max_attendees=limit))
    await _caught_up(pair, made.id)
    return made.id


async def _register(rt: Runtime, event_id: str, count: int) -> None:
    for _ in range(count):
        who = attendee(f"a-{secrets.token_hex(4)}")
        await registrations.register(rt, who, event_id, RegistrationDraft())


async def test_snapshots_come_from_the_replica_and_admissions_never_do(
    rt: Runtime, pair: Pair
) -> None:
    event_id = await _event(rt, pair)
    before = pair.replica_reads()
    await _register(rt, event_id, 5)  # admissions
    await events.get_event(rt, event_id)  # a read of one thing, which a caller may have changed
    await asyncio.sleep(0.3)  # the replica's log is written asynchronously
    assert pair.replica_reads() == before, "an admission or a point read reached the replica"

    await _caught_up(pair, event_id)
    deadline = time.monotonic() + 10
    while True:  # until the five registrations have been replayed too
        snap = await snapshot.capacity_snapshot(rt, event_id)
        if snap.registrations and snap.registrations.registered == 5:
            break
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    listed = await tickets.list_ticket_types(rt, event_id)
    await asyncio.sleep(0.3)
    assert pair.replica_reads() > before  # the snapshot and the listing were read there
    assert listed == []
    assert 0 <= snap.replica_lag_ms <= MAX_LAG * 1000
    assert snap.as_of <= snap.taken_at


async def test_a_lagging_replica_serves_within_the_bound_then_is_skipped(
    rt: Runtime, pair: Pair
) -> None:
    event_id = await _event(rt, pair)
    await _register(rt, event_id, 1)
    await _caught_up(pair, event_id)
    await asyncio.sleep(0.2)  # the registration is replayed as well
    pair.on_replica("SELECT pg_wal_replay_pause()")
    try:
        await _register(rt, event_id, 2)  # committed on the primary, not replayed
        paused_at = time.monotonic()
        stale = await snapshot.capacity_snapshot(rt, event_id)
        assert time.monotonic() - paused_at < MAX_LAG  # still within the bound
        assert stale.registrations is not None
        assert stale.registrations.registered == 1  # the replica's view: behind
        assert 0 < stale.replica_lag_ms <= MAX_LAG * 1000
        assert stale.as_of < stale.taken_at

        await asyncio.sleep(MAX_LAG - (time.monotonic() - paused_at) + 0.2)
        fresh = await snapshot.capacity_snapshot(rt, event_id)
        assert fresh.registrations is not None
        assert fresh.registrations.registered == 3  # the primary served
        assert fresh.replica_lag_ms == 0
        assert fresh.as_of == fresh.taken_at
    finally:
        pair.on_replica("SELECT pg_wal_replay_resume()")
    await asyncio.sleep(RECHECK_SECONDS + 0.2)
    before = pair.replica_reads()
    back = await snapshot.capacity_snapshot(rt, event_id)
    await asyncio.sleep(0.3)
    assert back.registrations is not None
    assert back.registrations.registered == 3
    assert pair.replica_reads() > before  # caught up: the replica serves again


async def test_a_stopped_replica_is_skipped_at_once(rt: Runtime, pair: Pair) -> None:
    event_id = await _event(rt, pair)
    await _register(rt, event_id, 2)
    pair.replica.stop("fast")
    try:
        started = time.monotonic()
        snaps = [await snapshot.capacity_snapshot(rt, event_id) for _ in range(20)]
        elapsed = time.monotonic() - started
        assert all(s.registrations and s.registrations.registered == 2 for s in snaps)
        assert all(s.replica_lag_ms == 0 for s in snaps)  # the primary served them all
        assert elapsed < 2.0  # one refused connection, then no more attempts for a while
    finally:
        pair.replica.start()
    await asyncio.sleep(RECHECK_SECONDS + 0.2)
    await _caught_up(pair, event_id)
    before = pair.replica_reads()
    await snapshot.capacity_snapshot(rt, event_id)
    await asyncio.sleep(0.3)
    assert pair.replica_reads() > before  # back in service by itself
