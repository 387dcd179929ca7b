"""The door against two real server processes sharing one database.

8 gates per process scan credentials in and out at random against one area; a checker
reads the counter and the position rows in one statement throughout. At every checkpoint
they are equal and within the maximum; afterwards the real `headcount reconcile`, which
folds the scan rows, finds no drift. CI runs a scaled-down day (seconds);
`HEADCOUNT_DOOR_FULL=1` runs the issue's figures: 2,000 credentials, an area of 500,
8 gates x 2 processes.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from headcount.domain.identity import Role
from support.api import client
from support.auth import bearer
from support.databases import BACKENDS
from support.door import checkpoint_rows
from support.ledger_checks import run_reconcile
from support.servers import Server, two_processes

pytestmark = pytest.mark.slow
ORG = bearer("org-e2e-door", Role.ORGANIZER)
FULL = os.environ.get("HEADCOUNT_DOOR_FULL") == "1"
GATES_PER_PROCESS = 8
CREDENTIALS, MAXIMUM, SCANS_PER_GATE = (2000, 500, 400) if FULL else (300, 75, 40)


@pytest.fixture(scope="module", params=BACKENDS)
def cluster(request: pytest.FixtureRequest, log_dir: Path) -> Iterator[tuple[str, list[Server]]]:
    with two_processes(request, log_dir) as found:
        yield found


async def _setup(servers: list[Server], people: int, maximum: int) -> tuple[str, list[str]]:
    """An event, one area, `people` registrations (made through both processes)."""
    async with client(servers[0].base_url) as http:
        made = await http.post("/api/v1/events", json={"name": "Door"}, headers=ORG)
        event_id = made.json()["id"]
        area = await http.post(
            f"/api/v1/events/{event_id}/areas",
            json={"name": "Hall", "max_occupancy": maximum},
            headers=ORG,
        )
        assert area.status_code == 201, area.text
    clients = [client(s.base_url) for s in servers]
    registered: list[httpx.Response] = []
    try:
        # In rounds: thousands of requests queued on one httpx pool crawl (setup only).
        for start in range(0, people, 100):
            registered += await asyncio.gather(
                *(
                    clients[n % 2].post(
                        f"/api/v1/events/{event_id}/registrations", headers=bearer(f"door-{n}")
                    )
                    for n in range(start, min(people, start + 100))
                )
            )
    finally:
        for c in clients:
            await c.aclose()
    assert {r.status_code for r in registered} == {201}
    return area.json()["id"], [f"registration:{r.json()['id']}" for r in registered]


async def _gate(
    http: httpx.AsyncClient, area_id: str, people: list[str], name: str, seen: Counter[str]
) -> list[int]:
    rng = random.Random(name)
    insides: list[int] = []
    for n in range(SCANS_PER_GATE):
        body = {
            "scan_id": f"{name}-{n}",
            "credential": rng.choice(people),
            "direction": "entry" if rng.random() < 0.6 else "exit",
        }
        answer = await http.post(f"/api/v1/areas/{area_id}/scans", json=body, headers=ORG)
        assert answer.status_code in (200, 409), answer.text
        seen[str(answer.status_code if answer.status_code == 200 else answer.json()["code"])] += 1
        if answer.status_code == 200:
            insides.append(answer.json()["inside"])
    return insides


async def test_gates_on_two_processes_keep_occupancy_exact(
    cluster: tuple[str, list[Server]],
) -> None:
    url, servers = cluster
    area_id, people = await _setup(servers, CREDENTIALS, MAXIMUM)
    seen: Counter[str] = Counter()
    checks: list[tuple[int, int]] = []
    done = asyncio.Event()

    async def checker() -> None:
        while not done.is_set():
            checks.append(await asyncio.to_thread(checkpoint_rows, url, area_id))
            await asyncio.sleep(0.02)

    clients = [client(s.base_url, connections=GATES_PER_PROCESS) for s in servers]
    watching = asyncio.create_task(checker())
    start = time.perf_counter()
    try:
        insides = await asyncio.gather(
            *(
                _gate(clients[p], area_id, people, f"p{p}g{g}", seen)
                for p in range(len(servers))
                for g in range(GATES_PER_PROCESS)
            )
        )
    finally:
        elapsed = time.perf_counter() - start
        done.set()
        await watching
        for c in clients:
            await c.aclose()
    checks.append(checkpoint_rows(url, area_id))
    scans_made = sum(seen.values())
    print(
        f"\ndoor: {len(servers)} processes x {GATES_PER_PROCESS} gates, {CREDENTIALS} credentials,"
        f" area of {MAXIMUM}: {scans_made} scans in {elapsed:.2f}s ({scans_made / elapsed:.0f}/s),"
        f" {len(checks)} checkpoints, answers {dict(seen)}"
    )
    assert all(counter == rows <= MAXIMUM for counter, rows in checks), checks
    assert max(i for gate in insides for i in gate) <= MAXIMUM
    checked = run_reconcile(url)
    assert checked.returncode == 0, checked.stdout + checked.stderr


async def test_hi_events_889_two_gates_on_two_processes_count_once(
    cluster: tuple[str, list[Server]],
) -> None:
    url, servers = cluster
    area_id, people = await _setup(servers, 20, 100)
    clients = [client(s.base_url) for s in servers]
    try:
        answers = await asyncio.gather(
            *(
                clients[p].post(
                    f"/api/v1/areas/{area_id}/scans",
                    json={"scan_id": f"list{p}-{n}", "credential": person, "direction": "entry"},
                    headers=ORG,
                )
                for n, person in enumerate(people)
                for p in (0, 1)
            )
        )
    finally:
        for c in clients:
            await c.aclose()
    codes = Counter(a.status_code if a.status_code == 200 else a.json()["code"] for a in answers)
    assert codes == {200: len(people), "already_inside": len(people)}
    assert checkpoint_rows(url, area_id) == (len(people), len(people))
