"""Gates scanning at once, in one process (SQLite and PostgreSQL), and the control: without
the credential lock the same steps drift.

The hammer: gates pick credentials at random and scan them in or out; a checker reads
the area in one snapshot over and over. At every checkpoint the counter equals the
position rows inside and never exceeds the maximum; at the end reconcile, which folds
the scan rows, finds zero drift.
"""

from __future__ import annotations

import asyncio
import contextlib
import random

import pytest

from headcount.capacity import scans
from headcount.capacity.scans import ScanDraft
from headcount.config import Settings
from headcount.domain.errors import AlreadyInside, AreaFull
from headcount.domain.occupancy import Direction
from headcount.ledger import areas, locks
from headcount.ledger.reconcile import reconcile
from headcount.runtime import Runtime
from support.databases import postgres_database
from support.door import ORG, checkpoint, door_event

GATES, CREDENTIALS, MAXIMUM, SCANS_PER_GATE = 8, 120, 30, 40


async def _gate(rt: Runtime, area_id: str, people: list[str], gate: int, seen: list[int]) -> None:
    rng = random.Random(gate)
    for n in range(SCANS_PER_GATE):
        direction = Direction.ENTRY if rng.random() < 0.6 else Direction.EXIT
        draft = ScanDraft(
            scan_id=f"g{gate}-{n}", credential=rng.choice(people), direction=direction
        )
        with contextlib.suppress(AreaFull, AlreadyInside):
            seen.append((await scans.scan(rt, ORG, area_id, draft)).inside)


async def test_eight_gates_never_exceed_the_maximum(runtime: Runtime) -> None:
    area_id, people = await door_event(runtime, CREDENTIALS, MAXIMUM)
    seen: list[int] = []
    done = asyncio.Event()
    checks: list[tuple[int, int]] = []

    async def checker() -> None:
        while not done.is_set():
            checks.append(await checkpoint(runtime, area_id))
            await asyncio.sleep(0.01)

    watching = asyncio.create_task(checker())
    await asyncio.gather(*(_gate(runtime, area_id, people, g, seen) for g in range(GATES)))
    done.set()
    await watching
    checks.append(await checkpoint(runtime, area_id))
    assert all(counter == rows <= MAXIMUM for counter, rows in checks), checks
    assert max(seen) == MAXIMUM  # the area really filled, so the cap was tested
    async with runtime.db.transaction() as tx:
        assert [str(d) for d in await reconcile(tx)] == []


async def _slow_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Widen the read-then-write window so two gates overlap every time."""
    read = areas.position

    async def slow(*args: object) -> str | None:
        found = await read(*args)  # type: ignore[arg-type]
        await asyncio.sleep(0.2)
        return found

    monkeypatch.setattr(areas, "position", slow)


async def _two_gates_exit(rt: Runtime, area_id: str, leaving: list[str]) -> list[object]:
    """Everyone in `leaving` scanned out at gates a and b at the same moment."""

    def scan(person: str, gate: str, direction: Direction) -> ScanDraft:
        return ScanDraft(scan_id=f"{gate}-{person[-12:]}", credential=person, direction=direction)

    return await asyncio.gather(
        *(
            scans.scan(rt, ORG, area_id, scan(person, gate, Direction.EXIT))
            for person in leaving
            for gate in ("a", "b")
        ),
        return_exceptions=True,
    )


@pytest.mark.parametrize("locked", [True, False], ids=["credential-lock", "control-no-lock"])
async def test_the_credential_lock_is_what_keeps_two_gates_exact(
    postgres_url: str, locked: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL (SQLite serialises whole transactions, so it cannot show the race), in a
    database of its own: the control's drift is in the change log, which no fix rewrites,
    and would fail every later reconcile of the session's database."""
    made = postgres_database("hc_door_control")
    url = await asyncio.to_thread(made.__enter__)  # migrating runs its own event loop
    try:
        await _two_gates(url, locked, monkeypatch)
    finally:
        await asyncio.to_thread(made.__exit__, None, None, None)


async def _two_gates(url: str, locked: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    rt = Runtime.from_settings(Settings(database_url=url, env="test"))
    try:
        area_id, people = await door_event(rt, 12, None)
        for person in people:
            draft = ScanDraft(scan_id=f"in-{person[-12:]}", credential=person, direction="entry")
            await scans.scan(rt, ORG, area_id, draft)
        await _slow_reads(monkeypatch)
        if not locked:

            async def no_lock(*_: object) -> None:
                return None

            monkeypatch.setattr(locks, "credential", no_lock)
        answers = await _two_gates_exit(rt, area_id, people[:6])
        counter, rows = await checkpoint(rt, area_id)
        async with rt.db.transaction() as tx:
            drifts = [str(d) for d in await reconcile(tx) if d.table == "areas"]
        if locked:
            assert not [a for a in answers if isinstance(a, BaseException)]
            assert (counter, rows, drifts) == (6, 6, [])
        else:  # both gates saw each leaver inside and both counted them out
            # Each pair whose reads overlapped counted its leaver out twice (under heavy
            # load a pair may miss the window; one is enough to show the drift).
            assert rows == 6
            assert counter < rows, (counter, answers)
            assert drifts
    finally:
        await rt.close()


async def test_one_scan_id_sent_for_two_credentials_at_once_is_stored_once(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Their credential locks differ, so only the (event, scan_id) key can tell."""
    area_id, (ann, bob) = await door_event(runtime, 2, None)
    await _slow_reads(monkeypatch)
    answers = await asyncio.gather(
        *(
            scans.scan(
                runtime,
                ORG,
                area_id,
                ScanDraft(scan_id="same", credential=who, direction=Direction.ENTRY),
            )
            for who in (ann, bob)
        ),
        return_exceptions=True,
    )
    assert sorted(type(a).__name__ for a in answers) == ["ScanIdReused", "ScanView"], answers
    assert await checkpoint(runtime, area_id) == (1, 1)
    async with runtime.db.transaction() as tx:
        assert [str(d) for d in await reconcile(tx)] == []
