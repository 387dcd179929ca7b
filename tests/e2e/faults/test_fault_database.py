"""The database goes away, stalls or is slow: requests fail fast with 503 and nothing breaks.

Each test runs a real `headcount serve` against a private PostgreSQL it may stop, freeze or
lock. Bounds come from the server's own settings: every request must be answered within
`BOUND` seconds (no hang), errors are problems with `service_unavailable` or `timeout`,
never 500, nothing half-written survives, and the same process recovers by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest

from headcount.domain.identity import Role
from headcount.ledger.urls import plain
from support.api import client, create_event_with_stock
from support.auth import bearer
from support.ledger_checks import run_reconcile, ticket_rows
from support.private_services import PrivatePostgres, frozen
from support.servers import free_port, running_server, server_env

pytestmark = pytest.mark.slow

STATEMENT_TIMEOUT_MS = 1000
CONNECT_TIMEOUT = 1.0
FAULT_ENV = {
    "HEADCOUNT_DB_STATEMENT_TIMEOUT_MS": str(STATEMENT_TIMEOUT_MS),
    "HEADCOUNT_DB_CONNECT_TIMEOUT": str(CONNECT_TIMEOUT),
    "HEADCOUNT_DB_POOL_TIMEOUT": "2",
    "HEADCOUNT_MAX_PENDING_ORDERS_PER_USER": "0",
}
# The longest any request may take while the database misbehaves: a timed-out statement
# plus the client's margin, a timed-out reconnect, and slack for a loaded 2-core machine.
BOUND = 2 * (STATEMENT_TIMEOUT_MS / 1000 + 0.5) + CONNECT_TIMEOUT + 1.5
UNAVAILABLE = {"service_unavailable", "timeout"}


@dataclass
class Attempt:
    n: int
    started: float
    elapsed: float
    status: int
    code: str | None


async def _order(http: httpx.AsyncClient, n: int, event_id: str, tt: str, origin: float) -> Attempt:
    start = time.perf_counter()
    response = await http.post(
        "/api/v1/orders",
        json={"event_id": event_id, "items": [{"ticket_type_id": tt, "quantity": 1}]},
        headers={**bearer(f"load-{n}"), "Idempotency-Key": f"load-{n}"},
    )
    code = None if response.status_code < 400 else response.json().get("code")
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/problem+json")
    return Attempt(n, start - origin, time.perf_counter() - start, response.status_code, code)


def _summary(attempts: list[Attempt]) -> str:
    statuses = Counter(a.status for a in attempts)
    worst = max((a.elapsed for a in attempts), default=0.0)
    return f"{len(attempts)} requests {dict(statuses)}, slowest {worst:.2f}s"


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_postgres_restart_under_load_fails_fast_and_recovers(
    fault_database: str, private_pg: PrivatePostgres, log_dir: Path, mode: str
) -> None:
    """`fast`: an orderly shutdown that cuts every session; `immediate`: a crash."""
    with running_server(fault_database, log_dir, FAULT_ENV) as server:
        async with client(server.base_url, timeout=30) as http:
            event_id, (tt,) = await create_event_with_stock(http, 100_000)
            attempts: list[Attempt] = []
            origin = time.perf_counter()
            done = asyncio.Event()
            back = asyncio.Event()  # an order sent after the restart succeeded
            up_at = float("inf")
            counter = iter(range(1_000_000))

            async def buyer() -> None:
                while not done.is_set():
                    attempt = await _order(http, next(counter), event_id, tt, origin)
                    attempts.append(attempt)
                    if attempt.status == 201 and attempt.started >= up_at:
                        back.set()
                    await asyncio.sleep(0.05)

            workers = [asyncio.create_task(buyer()) for _ in range(16)]
            await asyncio.sleep(0.5)  # the load is on: orders are being answered
            stopped_at = time.perf_counter() - origin
            await asyncio.to_thread(private_pg.stop, mode)
            await asyncio.sleep(3.0)  # longer than the pool and connect timeouts together
            await asyncio.to_thread(private_pg.start)
            up_at = time.perf_counter() - origin
            # The load goes on until an order sent after the restart succeeds, at most the
            # 2 s it always had to (no success by then fails below), and half a second past.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(back.wait(), 2.0)
            await asyncio.sleep(0.5)
            done.set()
            await asyncio.gather(*workers)

            # Every refused request is retried with its key: it is done exactly once.
            refused = [a for a in attempts if a.status != 201]
            gate = asyncio.Semaphore(8)

            async def retry(a: Attempt) -> Attempt:
                async with gate:
                    return await _order(http, a.n, event_id, tt, origin)

            retried = await asyncio.gather(*(retry(a) for a in refused))

    statuses = Counter(a.status for a in attempts)
    codes = Counter(a.code for a in attempts if a.code)
    during = [a for a in attempts if stopped_at <= a.started <= up_at]
    recovered = min(
        (a.started + a.elapsed for a in attempts if a.status == 201 and a.started >= up_at),
        default=None,
    )
    print(
        f"\nPostgreSQL stopped ({mode}) {up_at - stopped_at:.1f}s under load: "
        f"{_summary(attempts)}; "
        f"during the outage {_summary(during)}; codes {dict(codes)}; first success "
        f"{(recovered or 0) - up_at:.2f}s after restart; "
        f"retries {Counter(r.status for r in retried)}"
    )
    assert set(statuses) <= {201, 503}, statuses
    assert statuses[503] > 0, "the outage was not noticed: the fault did not happen"
    assert set(codes) <= UNAVAILABLE, codes
    assert max(a.elapsed for a in attempts) < BOUND
    assert recovered is not None, "the server did not recover after PostgreSQL came back"
    assert recovered - up_at < 5.0
    assert {r.status for r in retried} == {201}

    # Nothing half-written: exactly one order per buyer that was told 201, counters agree.
    granted = {a.n for a in attempts if a.status == 201} | {r.n for r in retried}
    rows = ticket_rows(fault_database, tt)
    assert rows["reserved"] == rows["held_rows"] == len(granted)
    reconciled = run_reconcile(fault_database)
    assert reconciled.returncode == 0, reconciled.stdout + reconciled.stderr


async def _recovered(http: httpx.AsyncClient, event_id: str, tt: str, within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    n = 300
    seen: Counter[tuple[int, str | None]] = Counter()
    while (attempt := await _order(http, n, event_id, tt, 0.0)).status != 201:
        seen[attempt.status, attempt.code] += 1
        assert time.monotonic() < deadline, f"no recovery after PostgreSQL thawed: {seen}"
        n += 1
        await asyncio.sleep(0.2)


async def test_frozen_postgres_cannot_hang_requests(
    fault_database: str, private_pg: PrivatePostgres, log_dir: Path
) -> None:
    """SIGSTOP'd server: sockets stay open, nothing answers; server-side timeouts can't fire."""
    with running_server(fault_database, log_dir, FAULT_ENV) as server:
        async with client(server.base_url, timeout=30) as http:
            event_id, (tt,) = await create_event_with_stock(http, 100)
            warm = await asyncio.gather(
                *(_order(http, n, event_id, tt, 0.0) for n in range(8))
            )  # fills the pool with connections that will go silent
            assert {a.status for a in warm} == {201}
            with frozen(private_pg):
                stalled = await asyncio.gather(
                    *(_order(http, n, event_id, tt, 0.0) for n in range(100, 112))
                )
                ready = await http.get("/readyz")
            # Thawed: the pool's connections that timed out are replaced (through a pooler
            # also its server connections), so allow a moment, then every order succeeds.
            await _recovered(http, event_id, tt)
            after = await asyncio.gather(
                *(_order(http, n, event_id, tt, 0.0) for n in range(200, 204))
            )
    print(f"\nPostgreSQL frozen: {_summary(stalled)}, codes {Counter(a.code for a in stalled)}")
    assert {a.status for a in stalled} == {503}
    assert {a.code for a in stalled} <= UNAVAILABLE
    assert max(a.elapsed for a in stalled) < BOUND
    assert ready.status_code == 503
    assert {a.status for a in after} == {201}
    assert run_reconcile(fault_database).returncode == 0


async def test_a_lock_held_elsewhere_times_out_with_a_clear_problem(
    fault_database: str, log_dir: Path
) -> None:
    """Another session holds the ticket type row: buyers get 503 `timeout`, not a hang."""
    with running_server(fault_database, log_dir, FAULT_ENV) as server:
        async with client(server.base_url, timeout=30) as http:
            event_id, (tt,) = await create_event_with_stock(http, 10)
            with psycopg.connect(plain(fault_database)) as blocker:
                blocker.execute("SELECT 1 FROM ticket_types WHERE id = %s FOR UPDATE", (tt,))
                blocked = await asyncio.gather(
                    *(_order(http, n, event_id, tt, 0.0) for n in range(5))
                )
                confirm = await http.post(
                    "/api/v1/orders/ord_missing/confirm",
                    headers=bearer("org-e2e", Role.ORGANIZER),
                )
                blocker.rollback()
            after = await _order(http, 99, event_id, tt, 0.0)
    print(f"\nticket type row locked elsewhere: {_summary(blocked)}")
    assert {a.status for a in blocked} == {503}
    assert {a.code for a in blocked} == {"timeout"}
    assert all(STATEMENT_TIMEOUT_MS / 1000 * 0.8 < a.elapsed < BOUND for a in blocked)
    assert confirm.status_code == 404  # paths that do not need the row are not blocked
    assert after.status == 201
    rows = ticket_rows(fault_database, tt)
    assert rows["reserved"] == rows["held_rows"] == 1  # the refusals left nothing behind


async def test_a_sqlite_writer_holding_the_lock_times_out(tmp_path: Path, log_dir: Path) -> None:
    """SQLite: the busy timeout follows HEADCOUNT_DB_STATEMENT_TIMEOUT_MS instead of 30 s."""
    import sqlite3

    from headcount.ledger.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'locked.db'}"
    await asyncio.to_thread(upgrade, url)
    with running_server(url, log_dir, FAULT_ENV) as server:
        async with client(server.base_url, timeout=30) as http:
            event_id, (tt,) = await create_event_with_stock(http, 10)
            blocker = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
            try:
                blocker.execute("BEGIN IMMEDIATE")
                blocked = await asyncio.gather(
                    *(_order(http, n, event_id, tt, 0.0) for n in range(3))
                )
            finally:
                blocker.execute("ROLLBACK")
                blocker.close()
            after = await _order(http, 99, event_id, tt, 0.0)
    print(f"\nSQLite write lock held elsewhere: {_summary(blocked)}")
    assert {a.status for a in blocked} == {503}
    assert {a.code for a in blocked} == {"timeout"}
    assert max(a.elapsed for a in blocked) < BOUND + 2  # queued writers wait in turn
    assert after.status == 201


def test_serve_refuses_to_start_clearly_when_the_database_is_down(tmp_path: Path) -> None:
    """Decision: no database at boot ⇒ exit 3 at once with one clear line (the orchestrator
    restarts it), rather than serving 503s forever from a process with an unmigrated schema."""
    port = free_port()
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "headcount", "serve", "--port", str(port)],
        env=server_env(dead, {"HEADCOUNT_DB_CONNECT_TIMEOUT": "1"}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    elapsed = time.perf_counter() - start
    output = done.stdout + done.stderr
    print(f"\nserve with the database down: exit {done.returncode} after {elapsed:.1f}s")
    assert done.returncode == 3, output
    assert "database unreachable" in output
    assert "Traceback" not in output
    assert elapsed < 20
