"""Sessions, RSVPs and session waitlists against SQLite and PostgreSQL (service layer)."""

from __future__ import annotations

import pytest

from headcount.capacity import registrations, sessions
from headcount.capacity.events import EventDraft
from headcount.capacity.registrations import RegistrationDraft
from headcount.capacity.sessions import SessionDraft, SessionPatch
from headcount.domain.errors import (
    Conflict,
    Forbidden,
    NotFound,
    NotRegistered,
    SessionFull,
)
from headcount.runtime import Runtime
from support.auth import attendee, organizer
from support.ledger_checks import assert_no_drift
from support.seed import event_with_session

ORG = organizer("org-ses")


async def make_session(
    rt: Runtime, seats: int, *, waitlist: bool = True, people: int = 0
) -> tuple[str, str]:
    event_id, session_id = await event_with_session(
        rt,
        ORG,
        EventDraft(name="Sessions test"),
        SessionDraft(title="Workshop", max_participants=seats, waitlist_enabled=waitlist),
    )
    for n in range(people):
        await registrations.register(rt, attendee(f"p{n}"), event_id, RegistrationDraft())
    return event_id, session_id


async def test_rsvp_confirms_then_waitlists_in_order(runtime: Runtime) -> None:
    _, sid = await make_session(runtime, 2, people=5)
    answers = [await sessions.rsvp(runtime, attendee(f"p{n}"), sid) for n in range(5)]
    assert [a.status for a in answers] == ["confirmed"] * 2 + ["waitlisted"] * 3
    assert [a.position for a in answers] == [None, None, 1, 2, 3]
    view = await sessions.get_session(runtime, sid)
    assert (view.current_attendance, view.remaining, view.is_full, view.waitlist_length) == (
        2,
        0,
        True,
        3,
    )
    listing = await sessions.session_waitlist(runtime, ORG, sid)
    assert [e.attendee_id for e in listing.entries] == ["p2", "p3", "p4"]
    assert [e.position for e in listing.entries] == [1, 2, 3]
    await assert_no_drift(runtime)


async def test_rsvp_twice_answers_the_same_and_counts_once(runtime: Runtime) -> None:
    _, sid = await make_session(runtime, 1, people=2)
    assert (await sessions.rsvp(runtime, attendee("p0"), sid)).status == "confirmed"
    assert (await sessions.rsvp(runtime, attendee("p0"), sid)).status == "confirmed"
    first = await sessions.rsvp(runtime, attendee("p1"), sid)
    again = await sessions.rsvp(runtime, attendee("p1"), sid)
    assert (first.status, first.position) == ("waitlisted", 1)
    assert again == first
    assert (await sessions.get_session(runtime, sid)).current_attendance == 1
    await assert_no_drift(runtime)


async def test_full_session_without_waitlist_refuses(runtime: Runtime) -> None:
    _, sid = await make_session(runtime, 1, waitlist=False, people=2)
    await sessions.rsvp(runtime, attendee("p0"), sid)
    with pytest.raises(SessionFull) as refused:
        await sessions.rsvp(runtime, attendee("p1"), sid)
    assert refused.value.code == "session_full"
    assert (await sessions.my_rsvp(runtime, attendee("p1"), sid)).status == "none"
    with pytest.raises(NotFound):
        await sessions.my_waitlist_entry(runtime, attendee("p1"), sid)
    await assert_no_drift(runtime)


async def test_only_registered_attendees_may_rsvp(runtime: Runtime) -> None:
    _, sid = await make_session(runtime, 5)
    with pytest.raises(NotRegistered):
        await sessions.rsvp(runtime, attendee("stranger"), sid)
    assert (await sessions.get_session(runtime, sid)).current_attendance == 0


async def test_leaving_promotes_the_head_of_the_waitlist(runtime: Runtime) -> None:
    _, sid = await make_session(runtime, 1, people=3)
    for n in range(3):
        await sessions.rsvp(runtime, attendee(f"p{n}"), sid)
    left = await sessions.leave(runtime, attendee("p0"), sid)
    assert left.status == "none"
    mine = await sessions.my_rsvp(runtime, attendee("p1"), sid)
    assert mine.status == "confirmed"
    assert mine.waitlist_entry is not None
    assert mine.waitlist_entry.status == "promoted"
    entry = await sessions.my_waitlist_entry(runtime, attendee("p2"), sid)
    assert (entry.status, entry.position) == ("waiting", 1)
    # Leaving the waitlist: p2's entry says so, and nobody is promoted by it.
    await sessions.leave(runtime, attendee("p2"), sid)
    gone = await sessions.my_waitlist_entry(runtime, attendee("p2"), sid)
    assert (gone.status, gone.position) == ("left", None)
    view = await sessions.get_session(runtime, sid)
    assert (view.current_attendance, view.waitlist_length) == (1, 0)
    # Leaving twice is harmless.
    await sessions.leave(runtime, attendee("p0"), sid)
    assert (await sessions.get_session(runtime, sid)).current_attendance == 1
    await assert_no_drift(runtime)


async def test_a_freed_seat_is_not_taken_by_a_newcomer(runtime: Runtime) -> None:
    _, sid = await make_session(runtime, 1, people=3)
    await sessions.rsvp(runtime, attendee("p0"), sid)
    await sessions.rsvp(runtime, attendee("p1"), sid)
    await sessions.leave(runtime, attendee("p0"), sid)
    newcomer = await sessions.rsvp(runtime, attendee("p2"), sid)
    assert (newcomer.status, newcomer.position) == ("waitlisted", 1)
    assert (await sessions.my_rsvp(runtime, attendee("p1"), sid)).status == "confirmed"


async def test_raising_the_limit_promotes_and_lowering_below_seats_is_refused(
    runtime: Runtime,
) -> None:
    _, sid = await make_session(runtime, 1, people=4)
    for n in range(4):
        await sessions.rsvp(runtime, attendee(f"p{n}"), sid)
    raised = await sessions.update_session(runtime, ORG, sid, SessionPatch(max_participants=3))
    assert (raised.current_attendance, raised.waitlist_length) == (3, 1)
    assert [(await sessions.my_rsvp(runtime, attendee(f"p{n}"), sid)).status for n in range(4)] == [
        "confirmed",
        "confirmed",
        "confirmed",
        "waitlisted",
    ]
    with pytest.raises(Conflict):
        await sessions.update_session(runtime, ORG, sid, SessionPatch(max_participants=2))
    same = await sessions.update_session(runtime, ORG, sid, SessionPatch(max_participants=3))
    assert same.max_participants == 3
    with pytest.raises(Forbidden):
        await sessions.update_session(
            runtime, organizer("someone-else"), sid, SessionPatch(max_participants=9)
        )
    await assert_no_drift(runtime)


async def test_idempotency_keys_on_rsvp(runtime: Runtime) -> None:
    _, sid = await make_session(runtime, 1, people=2)
    first = await sessions.rsvp(runtime, attendee("p0"), sid, idempotency_key="k")
    await sessions.leave(runtime, attendee("p0"), sid)
    replay = await sessions.rsvp(runtime, attendee("p0"), sid, idempotency_key="k")
    assert replay == first  # the first answer, not a second seat
    assert (await sessions.get_session(runtime, sid)).current_attendance == 0
    # A new key asks again.
    assert (await sessions.rsvp(runtime, attendee("p0"), sid, idempotency_key="k2")).status == (
        "confirmed"
    )


async def test_waitlist_listing_is_for_organizers(runtime: Runtime) -> None:
    _, sid = await make_session(runtime, 0, people=1)
    assert (await sessions.rsvp(runtime, attendee("p0"), sid)).status == "waitlisted"
    with pytest.raises(Forbidden):
        await sessions.session_waitlist(runtime, attendee("p0"), sid)
    with pytest.raises(NotFound):
        await sessions.rsvp(runtime, attendee("p0"), "ses_missing")
    with pytest.raises(NotFound):
        await sessions.rsvp(runtime, attendee("p0"), "not an id!")
