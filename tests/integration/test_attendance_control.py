"""Control experiment: the checks can fail, and promotion-in-the-same-transaction is what
keeps them green.

With promotion switched off, a seat given up stays empty while someone waits (reconcile
and the row checks both say so) and the next newcomer takes it ahead of the queue. The
real code, under the same steps, does neither.
"""

from __future__ import annotations

import pytest

from headcount.capacity import events, registrations, sessions
from headcount.capacity.events import EventDraft
from headcount.capacity.registrations import RegistrationDraft
from headcount.capacity.sessions import SessionDraft
from headcount.ledger import seats
from headcount.ledger.attendance import WaitlistEntry
from headcount.ledger.reconcile import reconcile
from headcount.runtime import Runtime
from support.attendance_checks import assert_session_invariants, session_rows
from support.auth import attendee, organizer

ORG = organizer("org-control")


async def _scenario(rt: Runtime) -> str:
    """One seat: `first` sits, `second` waits, `first` leaves, `newcomer` RSVPs."""
    event = await events.create_event(rt, ORG, EventDraft(name="Control"))
    made = await sessions.create_session(
        rt, ORG, event.id, SessionDraft(title="One seat", max_participants=1)
    )
    for who in ("first", "second", "newcomer"):
        await registrations.register(rt, attendee(who), event.id, RegistrationDraft())
    await sessions.rsvp(rt, attendee("first"), made.id)
    await sessions.rsvp(rt, attendee("second"), made.id)
    await sessions.leave(rt, attendee("first"), made.id)
    return made.id


async def test_without_promotion_the_checks_fail(
    runtime: Runtime, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def no_promotion(*_: object, **__: object) -> list[WaitlistEntry]:
        return []

    monkeypatch.setattr(seats, "promote", no_promotion)
    sid = await _scenario(runtime)
    with pytest.raises(AssertionError, match="a seat is empty while someone waits"):
        assert_session_invariants(session_rows(database_url, sid))
    async with runtime.db.transaction() as tx:
        drifts = [d for d in await reconcile(tx) if d.row_id == sid]
    assert [d.column for d in drifts] == ["free_seats_while_waiting"]
    jumped = await sessions.rsvp(runtime, attendee("newcomer"), sid)
    assert jumped.status == "confirmed"  # the queue was jumped
    assert (await sessions.my_rsvp(runtime, attendee("second"), sid)).status == "waitlisted"

    # With promotion back, the next seat given up goes to the head of the queue.
    monkeypatch.undo()
    await sessions.leave(runtime, attendee("newcomer"), sid)
    assert (await sessions.my_rsvp(runtime, attendee("second"), sid)).status == "confirmed"


async def test_with_promotion_the_freed_seat_goes_to_the_queue(
    runtime: Runtime, database_url: str
) -> None:
    sid = await _scenario(runtime)
    assert_session_invariants(session_rows(database_url, sid))
    newcomer = await sessions.rsvp(runtime, attendee("newcomer"), sid)
    assert (newcomer.status, newcomer.position) == ("waitlisted", 1)
    assert (await sessions.my_rsvp(runtime, attendee("second"), sid)).status == "confirmed"
    async with runtime.db.transaction() as tx:
        assert [d for d in await reconcile(tx) if d.row_id == sid] == []


async def test_reconcile_fix_runs_the_missed_promotion(
    runtime: Runtime, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_promote = seats.promote

    async def no_promotion(*_: object, **__: object) -> list[WaitlistEntry]:
        return []

    monkeypatch.setattr(seats, "promote", no_promotion)
    sid = await _scenario(runtime)
    monkeypatch.setattr(seats, "promote", real_promote)
    async with runtime.db.transaction() as tx:
        fixed = [d for d in await reconcile(tx, fix=True) if d.row_id == sid]
    assert [d.column for d in fixed] == ["free_seats_while_waiting"]
    assert (await sessions.my_rsvp(runtime, attendee("second"), sid)).status == "confirmed"
    assert_session_invariants(session_rows(database_url, sid))
    async with runtime.db.transaction() as tx:
        assert [d for d in await reconcile(tx) if d.row_id == sid] == []
