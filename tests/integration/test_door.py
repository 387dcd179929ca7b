"""The door at the service layer (SQLite and PostgreSQL): areas, scans, nesting, the #889
two-gate case, offline batches replayed out of order, bad scans, corrections and
`release_after_exit`; every test ends with reconcile finding zero drift.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from headcount.capacity import areas, events, orders, registrations, scans, snapshot, tickets
from headcount.capacity.areas import AreaDraft, AreaPatch
from headcount.capacity.events import EventDraft
from headcount.capacity.orders import OrderDraft, OrderItemInput
from headcount.capacity.registrations import RegistrationDraft
from headcount.capacity.scans import BatchScan, CheckoutDraft, ScanBatch, ScanDraft
from headcount.capacity.tickets import TicketTypeDraft
from headcount.capacity.views import ScanView
from headcount.domain.errors import (
    AlreadyInside,
    AreaFull,
    CredentialOtherEvent,
    Forbidden,
    HeadcountError,
    MalformedCredential,
    ScanIdReused,
    TicketReleased,
    UnknownCredential,
)
from headcount.domain.occupancy import Direction
from headcount.ledger.changes import Change
from headcount.ledger.reconcile import reconcile
from headcount.ledger.venue import Area, AreaPosition, Scan
from headcount.runtime import Runtime
from support.auth import attendee, organizer
from support.changes import Reader, only, subset

ORG = organizer("org-door")
T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


async def _event(rt: Runtime) -> str:
    return (await events.create_event(rt, ORG, EventDraft(name="Door"))).id


async def _area(
    rt: Runtime, event_id: str, name: str, maximum: int | None = None, **more: object
) -> str:
    draft = AreaDraft(name=name, max_occupancy=maximum, **more)
    return (await areas.create_area(rt, ORG, event_id, draft)).id


async def _venue_with_hall(rt: Runtime) -> tuple[str, str, str]:
    """(event id, a venue without a maximum, a hall inside it without one)."""
    event_id = await _event(rt)
    venue = await _area(rt, event_id, "Venue")
    return event_id, venue, await _area(rt, event_id, "Hall", parent_id=venue)


async def _people(rt: Runtime, event_id: str, n: int, prefix: str = "p") -> list[str]:
    """`n` registration credentials of the event."""
    found = []
    for i in range(n):
        made, _ = await registrations.register(
            rt, attendee(f"{prefix}-{event_id}-{i}"), event_id, RegistrationDraft()
        )
        found.append(f"registration:{made.id}")
    return found


_seq = iter(range(10**9))


async def _scan(
    rt: Runtime, area_id: str, credential: str, direction: str, *, scan_id: str | None = None
) -> ScanView:
    draft = ScanDraft(
        scan_id=scan_id or f"s{next(_seq)}",
        credential=credential,
        direction=Direction(direction),
    )
    return await scans.scan(rt, ORG, area_id, draft)


async def _enter(rt: Runtime, area_id: str, credentials: list[str]) -> None:
    """Each credential scanned into the area, one after the other."""
    for credential in credentials:
        await _scan(rt, area_id, credential, "entry")


async def _inside(rt: Runtime, area_id: str) -> int:
    return (await areas.get_area(rt, area_id)).inside


async def _no_drift(rt: Runtime) -> None:
    async with rt.db.transaction() as tx:
        assert [str(d) for d in await reconcile(tx)] == []


async def _counts(rt: Runtime, event_id: str) -> tuple[int, int, int]:
    """(stored scans, recorded changes, positions) of the event: what a refusal must not move."""
    async with rt.db.snapshot() as tx:
        stored = await tx.scalar(select(func.count()).where(Scan.event_id == event_id))
        logged = await tx.scalar(select(func.count()).where(Change.event_id == event_id))
        where = await tx.scalar(select(func.count()).where(AreaPosition.event_id == event_id))
    return int(stored or 0), int(logged or 0), int(where or 0)


async def test_entries_exits_and_the_refusals_of_one_area(runtime: Runtime) -> None:
    event_id = await _event(runtime)
    hall = await _area(runtime, event_id, "Hall", 2)
    a, b, c = await _people(runtime, event_id, 3)
    assert (await _scan(runtime, hall, a, "entry")).outcome == "accepted"
    with pytest.raises(AlreadyInside):
        await _scan(runtime, hall, a, "entry")
    await _scan(runtime, hall, b, "entry")
    before = await _counts(runtime, event_id)
    with pytest.raises(AreaFull) as full:
        await _scan(runtime, hall, c, "entry")
    assert (full.value.max_occupancy, full.value.inside) == (2, 2)
    assert await _counts(runtime, event_id) == before  # refused: nothing stored or logged
    unmatched = await _scan(runtime, hall, c, "exit")
    assert (unmatched.outcome, unmatched.admitted, unmatched.inside) == ("not_inside", False, 2)
    assert (await _scan(runtime, hall, a, "exit")).inside == 1
    assert (await _scan(runtime, hall, c, "entry")).inside == 2
    view = await areas.get_area(runtime, hall)
    assert (view.inside, view.is_full, view.warning, view.remaining) == (2, True, True, 0)
    await _no_drift(runtime)


async def test_a_hall_counts_in_its_venue_and_people_move_between_halls(runtime: Runtime) -> None:
    event_id = await _event(runtime)
    venue = await _area(runtime, event_id, "Venue", 2)
    hall = await _area(runtime, event_id, "Hall", 5, parent_id=venue)
    room = await _area(runtime, event_id, "Room", 1, parent_id=venue)
    a, b, c = await _people(runtime, event_id, 3)
    await _scan(runtime, hall, a, "entry")  # straight into the hall: also in the venue
    assert (await _inside(runtime, venue), await _inside(runtime, hall)) == (1, 1)
    with pytest.raises(AlreadyInside):
        await _scan(runtime, venue, a, "entry")
    await _scan(runtime, room, a, "entry")  # hall → room: one move, never twice in the venue
    assert [await _inside(runtime, x) for x in (venue, hall, room)] == [1, 0, 1]
    await _scan(runtime, venue, b, "entry")
    with pytest.raises(AreaFull) as full:  # the hall has room; the venue around it has none
        await _scan(runtime, hall, c, "entry")
    assert full.value.area_id == venue
    await _scan(runtime, room, a, "exit")  # out of the room: still in the venue
    assert [await _inside(runtime, x) for x in (venue, hall, room)] == [2, 0, 0]
    await _scan(runtime, venue, a, "exit")
    await _scan(runtime, hall, c, "entry")
    assert [await _inside(runtime, x) for x in (venue, hall, room)] == [2, 1, 0]
    shown = await snapshot.capacity_snapshot(runtime, event_id)
    assert {x.id: x.inside for x in shown.areas} == {venue: 2, hall: 1, room: 0}
    assert [x.warning for x in shown.areas] == [True, False, False]
    await _no_drift(runtime)


async def test_hi_events_889_one_person_at_two_gates_counts_once(runtime: Runtime) -> None:
    """Two check-in lists (gates) of one hall, the same person scanned at both at once."""
    event_id = await _event(runtime)
    hall = await _area(runtime, event_id, "Hall", 10)
    people = await _people(runtime, event_id, 5)
    for person in people:
        answers = await asyncio.gather(
            _scan(runtime, hall, person, "entry", scan_id=f"gate-a-{person[-10:]}"),
            _scan(runtime, hall, person, "entry", scan_id=f"gate-b-{person[-10:]}"),
            return_exceptions=True,
        )
        admitted = [x for x in answers if isinstance(x, ScanView)]
        refused = [x for x in answers if isinstance(x, AlreadyInside)]
        assert (len(admitted), len(refused)) == (1, 1), answers
    assert await _inside(runtime, hall) == len(people)
    await _no_drift(runtime)


async def test_a_retried_scan_id_answers_the_same_and_moves_nothing(runtime: Runtime) -> None:
    event_id = await _event(runtime)
    hall = await _area(runtime, event_id, "Hall")
    (a,) = await _people(runtime, event_id, 1)
    first = await _scan(runtime, hall, a, "entry", scan_id="gate1-0001")
    again = await _scan(runtime, hall, a, "entry", scan_id="gate1-0001")
    assert (first.duplicate, again.duplicate, again.outcome, again.inside) == (
        False,
        True,
        "accepted",
        1,
    )
    with pytest.raises(ScanIdReused):
        await _scan(runtime, hall, a, "exit", scan_id="gate1-0001")
    await _no_drift(runtime)


async def test_bad_scans_get_their_codes_and_change_nothing(runtime: Runtime) -> None:
    event_id = await _event(runtime)
    other_event = await _event(runtime)
    hall = await _area(runtime, event_id, "Hall", 5)
    (outsider,) = await _people(runtime, other_event, 1)
    (a,) = await _people(runtime, event_id, 1)
    before = await _counts(runtime, event_id)
    bad: list[tuple[str, type[HeadcountError]]] = [
        ("registration:reg_doesnotexist", UnknownCredential),
        (f"{a}/2", UnknownCredential),  # a party of one has no second place
        ("ticket:ord_nope/tt_nope/1", UnknownCredential),
        ("rsvp:ses_nope/someone", UnknownCredential),
        (outsider, CredentialOtherEvent),
        ("hello", MalformedCredential),
        ("ticket:../../etc", MalformedCredential),
        ("registration:reg_x/0", MalformedCredential),
        ("badge:reg_x", MalformedCredential),
    ]
    for credential, refusal in bad:
        with pytest.raises(refusal):
            await _scan(runtime, hall, credential, "entry")
    with pytest.raises(Forbidden):
        await scans.scan(
            runtime,
            attendee("gatecrasher"),
            hall,
            ScanDraft(scan_id="x", credential=a, direction=Direction.ENTRY),
        )
    assert await _counts(runtime, event_id) == before
    assert await _inside(runtime, hall) == 0
    await _no_drift(runtime)


def _batch(area_id: str, people: Sequence[str], rounds: int, seed: int) -> list[BatchScan]:
    """An offline gate's day: each person in and out at random minutes."""
    rng = random.Random(seed)
    made: list[BatchScan] = []
    for p, person in enumerate(people):
        at = T0 + timedelta(minutes=rng.randrange(60))
        for r in range(rounds):
            for direction in (Direction.ENTRY, Direction.EXIT):
                if direction is Direction.EXIT and rng.random() < 0.3 and r == rounds - 1:
                    continue  # some stay inside at the end of the day
                made.append(
                    BatchScan(
                        area_id=area_id,
                        scan_id=f"off-{p}-{r}-{direction.value}",
                        credential=person,
                        direction=direction,
                        scanned_at=at,
                    )
                )
                at += timedelta(minutes=1 + rng.randrange(30))
    return made


async def _state(rt: Runtime, event_id: str) -> tuple[dict[str, str], dict[str, int]]:
    async with rt.db.snapshot() as tx:
        where = await tx.execute(
            select(AreaPosition.credential, AreaPosition.area_id).where(
                AreaPosition.event_id == event_id
            )
        )
        inside = await tx.execute(select(Area.id, Area.inside).where(Area.event_id == event_id))
        return dict(where.all()), dict(inside.all())


async def test_an_offline_batch_replayed_twice_and_out_of_order_ends_the_same(
    runtime: Runtime,
) -> None:
    event_id = await _event(runtime)
    hall = await _area(runtime, event_id, "Hall", 1000)
    people = await _people(runtime, event_id, 8)
    day = _batch(hall, people, rounds=3, seed=7)
    in_order = sorted(day, key=lambda s: s.scanned_at)
    # The reference: a fresh event fed the same day in time order, one scan at a time.
    ref_event = await _event(runtime)
    ref_hall = await _area(runtime, ref_event, "Hall", 1000)
    ref_people = await _people(runtime, ref_event, 8, prefix="ref")
    rename = dict(zip(people, ref_people, strict=True))
    for s in in_order:
        moved = s.model_copy(update={"area_id": ref_hall, "credential": rename[s.credential]})
        await scans.scan_batch(runtime, ORG, ref_event, ScanBatch(scans=[moved]))
    ref_where, ref_inside = await _state(runtime, ref_event)

    shuffled = list(day)
    random.Random(3).shuffle(shuffled)
    half = len(shuffled) // 2
    # The later half arrives first, then the earlier half, then the whole batch again.
    first = await scans.scan_batch(runtime, ORG, event_id, ScanBatch(scans=shuffled[half:]))
    second = await scans.scan_batch(runtime, ORG, event_id, ScanBatch(scans=shuffled[:half]))
    assert first.rejected == second.rejected == 0
    again = await scans.scan_batch(runtime, ORG, event_id, ScanBatch(scans=shuffled[::-1]))
    assert (again.duplicates, again.accepted, again.conflicted) == (len(day), 0, 0)
    where, inside = await _state(runtime, event_id)
    back = {v: k for k, v in rename.items()}
    assert where == {back[c]: hall for c in ref_where}
    assert inside == {hall: ref_inside[ref_hall]}
    assert inside[hall] == len(where)
    await _no_drift(runtime)


async def test_an_offline_entry_past_the_maximum_is_counted_and_flagged(runtime: Runtime) -> None:
    event_id = await _event(runtime)
    room = await _area(runtime, event_id, "Room", 2)
    people = await _people(runtime, event_id, 3)
    batch = [
        BatchScan(
            area_id=room,
            scan_id=f"late-{i}",
            credential=person,
            direction=Direction.ENTRY,
            scanned_at=T0 + timedelta(minutes=i),
        )
        for i, person in enumerate(people)
    ]
    batch.append(
        BatchScan(
            area_id=room,
            scan_id="late-bad",
            credential="registration:reg_unknown",
            direction=Direction.ENTRY,
            scanned_at=T0,
        )
    )
    done = await scans.scan_batch(runtime, ORG, event_id, ScanBatch(scans=batch))
    assert (done.accepted, done.conflicted, done.rejected) == (2, 1, 1)
    flagged = done.results[2]
    assert (flagged.status, flagged.scan and flagged.scan.outcome) == ("conflicted", "flagged")
    assert done.results[3].code == "unknown_credential"
    assert await _inside(runtime, room) == 3  # it happened: the count says so
    with pytest.raises(AreaFull):  # and the door stays shut online
        await _scan(runtime, room, (await _people(runtime, event_id, 1, "x"))[0], "entry")
    await _no_drift(runtime)


async def test_corrections_force_exit_and_reset(runtime: Runtime) -> None:
    event_id, venue, hall = await _venue_with_hall(runtime)
    people = await _people(runtime, event_id, 4)
    await _enter(runtime, hall, people[:2])
    await _enter(runtime, venue, people[2:])
    fixed = await scans.force_exit(runtime, ORG, hall, CheckoutDraft(credential=people[0]))
    assert (fixed.source, fixed.outcome) == ("correction", "accepted")
    assert (await _inside(runtime, venue), await _inside(runtime, hall)) == (4, 1)
    reset = await scans.reset_area(runtime, ORG, venue)
    assert (reset.checked_out, reset.area.inside) == (4, 0)
    assert await _inside(runtime, hall) == 0
    await _scan(runtime, hall, people[0], "entry")  # a new day
    await _no_drift(runtime)


async def test_allow_reentry_lets_a_second_entry_through_counted_once(runtime: Runtime) -> None:
    event_id = await _event(runtime)
    hall = await _area(runtime, event_id, "Hall", 3, allow_reentry=True)
    (a,) = await _people(runtime, event_id, 1)
    await _scan(runtime, hall, a, "entry")
    again = await _scan(runtime, hall, a, "entry")
    assert (again.outcome, again.admitted, again.inside) == ("already_inside", True, 1)
    await _no_drift(runtime)


async def test_release_after_exit_gives_the_ticket_back_with_the_final_exit(
    runtime: Runtime,
) -> None:
    event_id, venue, hall = await _venue_with_hall(runtime)
    tt = await tickets.create_ticket_type(
        runtime,
        ORG,
        event_id,
        TicketTypeDraft(name="Day", quantity_total=2, release_after_exit=True),
    )
    buyer = attendee("door-buyer")
    order = await orders.create_order(
        runtime,
        buyer,
        OrderDraft(event_id=event_id, items=[OrderItemInput(ticket_type_id=tt.id, quantity=2)]),
    )
    await orders.confirm_order(runtime, ORG, order.id)
    first, second = (f"ticket:{order.id}/{tt.id}/{n}" for n in (1, 2))
    assert (await tickets.get_ticket_type(runtime, tt.id)).quantity_available == 0
    await _scan(runtime, hall, first, "entry")
    out_of_hall = await _scan(runtime, hall, first, "exit")  # still in the venue
    assert not out_of_hall.released_to_sale
    left = await _scan(runtime, venue, first, "exit")
    assert left.released_to_sale
    assert (await tickets.get_ticket_type(runtime, tt.id)).quantity_available == 1
    with pytest.raises(TicketReleased):
        await _scan(runtime, venue, first, "entry")
    await _scan(runtime, venue, second, "entry")  # the other unit keeps its number
    assert (await _scan(runtime, venue, first, "exit", scan_id=left.scan_id)).duplicate
    shown = await orders.get_order(runtime, buyer, order.id)
    assert [i.quantity for i in shown.items] == [1]
    await _no_drift(runtime)


async def test_reconcile_finds_a_drifted_occupancy(runtime: Runtime) -> None:
    """Control: the check can fail, and `--fix` rebuilds the counter from the scans."""
    event_id = await _event(runtime)
    hall = await _area(runtime, event_id, "Hall")
    (a,) = await _people(runtime, event_id, 1)
    await _scan(runtime, hall, a, "entry")
    async with runtime.db.transaction() as tx:
        await tx.execute(update(Area).where(Area.id == hall).values(inside=5))
    async with runtime.db.transaction() as tx:
        found = [str(d) for d in await reconcile(tx, fix=True)]
    assert any("areas.inside of" in d and "rows say 1" in d for d in found), found
    assert await _inside(runtime, hall) == 1
    await _no_drift(runtime)


async def test_every_door_decision_records_its_change(runtime: Runtime) -> None:
    """Each stored scan, correction and release appears in the change log with its moves;
    a refused scan records nothing (docs/changes.md)."""
    event_id = await _event(runtime)
    log = Reader(runtime, event_id)
    venue = await _area(runtime, event_id, "Venue", 1)
    assert await log.types() == ["event.created", "area.created"]
    a, b, c = await _people(runtime, event_id, 3)
    await log.new()
    entered = await _scan(runtime, venue, a, "entry")
    found = only(await log.new(), "area.entered")
    subset(
        found.payload,
        area_id=venue,
        scan_id=entered.scan_id,
        credential=a + "/1",
        direction="entry",
        source="online",
        outcome="accepted",
        position=venue,
        moves={venue: 1},
    )
    with pytest.raises(AreaFull):
        await _scan(runtime, venue, b, "entry")
    with pytest.raises(AlreadyInside):
        await _scan(runtime, venue, a, "entry")
    assert await log.types() == []
    late = BatchScan(
        area_id=venue,
        scan_id="late",
        credential=b,
        direction=Direction.ENTRY,
        scanned_at=T0,
    )
    await scans.scan_batch(runtime, ORG, event_id, ScanBatch(scans=[late]))
    subset(only(await log.new(), "area.entry_flagged").payload, moves={venue: 1})
    await _scan(runtime, venue, c, "exit")
    subset(only(await log.new(), "area.exit_unmatched").payload, moves={}, position=None)
    await scans.force_exit(runtime, ORG, venue, CheckoutDraft(credential=b))
    subset(only(await log.new(), "area.checked_out").payload, moves={venue: -1})
    await _scan(runtime, venue, a, "exit")
    assert await log.types() == ["area.exited"]
    await _no_drift(runtime)


async def test_lowering_the_maximum_evicts_nobody_and_stops_entries(runtime: Runtime) -> None:
    event_id = await _event(runtime)
    hall = await _area(runtime, event_id, "Hall", 3)
    a, b, c = await _people(runtime, event_id, 3)
    await _scan(runtime, hall, a, "entry")
    await _scan(runtime, hall, b, "entry")
    log = Reader(runtime, event_id)
    await log.new()
    lowered = await areas.update_area(runtime, ORG, hall, AreaPatch(max_occupancy=1))
    assert (lowered.inside, lowered.is_full, lowered.remaining) == (2, True, 0)
    subset(
        only(await log.new(), "area.changed").payload,
        before={"max_occupancy": 3},
        after={"max_occupancy": 1},
    )
    with pytest.raises(AreaFull):
        await _scan(runtime, hall, c, "entry")
    await _scan(runtime, hall, a, "exit")
    with pytest.raises(AreaFull):  # still at the new maximum
        await _scan(runtime, hall, c, "entry")
    await _scan(runtime, hall, b, "exit")
    await _scan(runtime, hall, c, "entry")
    await areas.update_area(runtime, ORG, hall, AreaPatch(max_occupancy=None))
    assert (await areas.get_area(runtime, hall)).remaining is None
    await _no_drift(runtime)


async def test_the_auto_checkout_empties_the_area_once_at_its_moment(runtime: Runtime) -> None:
    event_id, venue, hall = await _venue_with_hall(runtime)
    people = await _people(runtime, event_id, 3)
    await _enter(runtime, hall, people)
    soon = runtime.clock() + timedelta(hours=1)
    await areas.update_area(runtime, ORG, venue, AreaPatch(checkout_at=soon))
    assert await scans.sweep_checkouts(runtime) == 0  # not yet
    past = runtime.clock() - timedelta(seconds=1)
    await areas.update_area(runtime, ORG, venue, AreaPatch(checkout_at=past))
    assert await scans.sweep_checkouts(runtime) == 3
    assert (await _inside(runtime, venue), await _inside(runtime, hall)) == (0, 0)
    assert (await areas.get_area(runtime, venue)).checkout_at is None  # once
    await _scan(runtime, hall, people[0], "entry")
    assert await scans.sweep_checkouts(runtime) == 0
    assert await _inside(runtime, hall) == 1
    await _no_drift(runtime)


async def test_someone_inside_whose_credential_lapsed_can_still_leave(runtime: Runtime) -> None:
    """A registration cancelled while its holder is inside: no entry, but the exit (and a
    reset) still let them out, so nobody stays counted forever."""
    event_id = await _event(runtime)
    hall = await _area(runtime, event_id, "Hall")
    a, b = await _people(runtime, event_id, 2, prefix="lapse")
    await _scan(runtime, hall, a, "entry")
    await _scan(runtime, hall, b, "entry")
    for sub in (f"lapse-{event_id}-0", f"lapse-{event_id}-1"):
        await registrations.cancel_registration(runtime, attendee(sub), event_id)
    assert (await _scan(runtime, hall, a, "exit")).outcome == "accepted"
    with pytest.raises(UnknownCredential):
        await _scan(runtime, hall, a, "entry")
    assert (await scans.reset_area(runtime, ORG, hall)).checked_out == 1
    assert await _inside(runtime, hall) == 0
    await _no_drift(runtime)
