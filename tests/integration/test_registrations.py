"""Event registration against real databases (SQLite and PostgreSQL), through the service layer."""

from __future__ import annotations

import pytest

from headcount.capacity import events, registrations, sessions
from headcount.capacity.events import EventDraft, EventPatch
from headcount.capacity.registrations import RegistrationDraft
from headcount.capacity.sessions import SessionDraft
from headcount.domain.errors import (
    EventFull,
    Forbidden,
    IdempotencyKeyReused,
    InvalidQuantity,
    NotFound,
)
from headcount.runtime import Runtime
from support.auth import attendee, organizer
from support.ledger_checks import assert_no_drift

ORG = organizer("org-reg")


async def make_event(rt: Runtime, max_attendees: int | None) -> str:
    event = await events.create_event(
        rt, ORG, EventDraft(name="Registration test", max_attendees=max_attendees)
    )
    return event.id


async def summary(rt: Runtime, event_id: str) -> tuple[int | None, int, int | None, bool]:
    cap = await registrations.get_registration_capacity(rt, event_id)
    return cap.max_attendees, cap.registered, cap.remaining, cap.is_full


async def test_register_until_full_then_event_full(runtime: Runtime) -> None:
    event_id = await make_event(runtime, 3)
    for n in range(3):
        reg, created = await registrations.register(
            runtime, attendee(f"a{n}"), event_id, RegistrationDraft()
        )
        assert created
        assert reg.status == "active"
    assert await summary(runtime, event_id) == (3, 3, 0, True)
    with pytest.raises(EventFull) as refused:
        await registrations.register(runtime, attendee("late"), event_id, RegistrationDraft())
    assert refused.value.extra["remaining"] == 0
    assert await summary(runtime, event_id) == (3, 3, 0, True)
    with pytest.raises(NotFound):
        await registrations.my_registration(runtime, attendee("late"), event_id)
    await assert_no_drift(runtime)


async def test_registering_twice_counts_once_and_returns_the_same(runtime: Runtime) -> None:
    event_id = await make_event(runtime, 5)
    first, created = await registrations.register(
        runtime, attendee("bo"), event_id, RegistrationDraft(party_size=2)
    )
    again, created_again = await registrations.register(
        runtime, attendee("bo"), event_id, RegistrationDraft(party_size=2)
    )
    assert created
    assert not created_again
    assert again.id == first.id
    assert await summary(runtime, event_id) == (5, 2, 3, False)
    await assert_no_drift(runtime)


async def test_party_size_counts_guests_and_can_change(runtime: Runtime) -> None:
    event_id = await make_event(runtime, 4)
    await registrations.register(runtime, attendee("cy"), event_id, RegistrationDraft(party_size=3))
    with pytest.raises(EventFull):
        await registrations.register(
            runtime, attendee("di"), event_id, RegistrationDraft(party_size=2)
        )
    # Growing the party needs room; shrinking always works.
    with pytest.raises(EventFull):
        await registrations.register(
            runtime, attendee("cy"), event_id, RegistrationDraft(party_size=5)
        )
    reg, _ = await registrations.register(
        runtime, attendee("cy"), event_id, RegistrationDraft(party_size=1)
    )
    assert reg.party_size == 1
    await registrations.register(runtime, attendee("di"), event_id, RegistrationDraft(party_size=2))
    assert await summary(runtime, event_id) == (4, 3, 1, False)
    with pytest.raises(InvalidQuantity):
        await registrations.register(
            runtime, attendee("ed"), event_id, RegistrationDraft.model_construct(party_size=0)
        )
    await assert_no_drift(runtime)


async def test_cancel_frees_places_and_is_idempotent(runtime: Runtime) -> None:
    event_id = await make_event(runtime, 2)
    await registrations.register(runtime, attendee("fi"), event_id, RegistrationDraft(party_size=2))
    cancelled = await registrations.cancel_registration(runtime, attendee("fi"), event_id)
    assert cancelled.status == "cancelled"
    assert cancelled.cancelled_at is not None
    again = await registrations.cancel_registration(runtime, attendee("fi"), event_id)
    assert again.status == "cancelled"
    assert await summary(runtime, event_id) == (2, 0, 2, False)
    with pytest.raises(NotFound):
        await registrations.cancel_registration(runtime, attendee("never"), event_id)
    # Re-registering after a cancel reactivates the same registration.
    back, created = await registrations.register(
        runtime, attendee("fi"), event_id, RegistrationDraft()
    )
    assert created
    assert back.id == cancelled.id
    assert await summary(runtime, event_id) == (2, 1, 1, False)
    await assert_no_drift(runtime)


async def test_lowering_the_cap_never_evicts_and_raising_admits(runtime: Runtime) -> None:
    event_id = await make_event(runtime, 3)
    for n in range(3):
        await registrations.register(runtime, attendee(f"g{n}"), event_id, RegistrationDraft())
    await events.update_event(runtime, ORG, event_id, EventPatch(max_attendees=1))
    assert await summary(runtime, event_id) == (1, 3, 0, True)
    assert (await registrations.my_registration(runtime, attendee("g2"), event_id)).status == (
        "active"
    )
    await registrations.cancel_registration(runtime, attendee("g0"), event_id)
    with pytest.raises(EventFull):  # 2 registered, cap 1: still no room
        await registrations.register(runtime, attendee("new"), event_id, RegistrationDraft())
    await events.update_event(runtime, ORG, event_id, EventPatch(max_attendees=3))
    await registrations.register(runtime, attendee("new"), event_id, RegistrationDraft())
    assert await summary(runtime, event_id) == (3, 3, 0, True)
    await events.update_event(runtime, ORG, event_id, EventPatch(max_attendees=None))
    await registrations.register(runtime, attendee("more"), event_id, RegistrationDraft())
    assert await summary(runtime, event_id) == (None, 4, None, False)
    await assert_no_drift(runtime)


async def test_zero_cap_is_full_from_the_start(runtime: Runtime) -> None:
    event_id = await make_event(runtime, 0)
    assert await summary(runtime, event_id) == (0, 0, 0, True)
    with pytest.raises(EventFull):
        await registrations.register(runtime, attendee("hu"), event_id, RegistrationDraft())


async def test_idempotency_key_replays_and_refuses_a_different_body(runtime: Runtime) -> None:
    event_id = await make_event(runtime, 10)
    first, _ = await registrations.register(
        runtime, attendee("ik"), event_id, RegistrationDraft(), idempotency_key="r1"
    )
    again, _ = await registrations.register(
        runtime, attendee("ik"), event_id, RegistrationDraft(), idempotency_key="r1"
    )
    assert again == first
    with pytest.raises(IdempotencyKeyReused):
        await registrations.register(
            runtime, attendee("ik"), event_id, RegistrationDraft(party_size=3), idempotency_key="r1"
        )
    assert await summary(runtime, event_id) == (10, 1, 9, False)


async def test_cancelling_gives_up_session_seats_to_the_waitlist(runtime: Runtime) -> None:
    event_id = await make_event(runtime, None)
    talk = await sessions.create_session(
        runtime, ORG, event_id, SessionDraft(title="Talk", max_participants=1)
    )
    for who in ("jo", "ka"):
        await registrations.register(runtime, attendee(who), event_id, RegistrationDraft())
    assert (await sessions.rsvp(runtime, attendee("jo"), talk.id)).status == "confirmed"
    assert (await sessions.rsvp(runtime, attendee("ka"), talk.id)).status == "waitlisted"
    await registrations.cancel_registration(runtime, attendee("jo"), event_id)
    assert (await sessions.my_rsvp(runtime, attendee("jo"), talk.id)).status == "none"
    assert (await sessions.my_rsvp(runtime, attendee("ka"), talk.id)).status == "confirmed"
    assert (await sessions.get_session(runtime, talk.id)).current_attendance == 1
    await assert_no_drift(runtime)


async def test_only_the_organizer_lists_registrations(runtime: Runtime) -> None:
    event_id = await make_event(runtime, None)
    await registrations.register(runtime, attendee("lu"), event_id, RegistrationDraft())
    with pytest.raises(Forbidden):
        await registrations.list_registrations(runtime, attendee("lu"), event_id)
    listed = await registrations.list_registrations(runtime, ORG, event_id)
    assert [r.attendee_id for r in listed] == ["lu"]
    with pytest.raises(NotFound):
        await registrations.register(runtime, attendee("lu"), "evt_nope", RegistrationDraft())
