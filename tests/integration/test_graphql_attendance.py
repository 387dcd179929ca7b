"""GraphQL registrations, RSVPs, waitlists and huddles: admitted, queued, refused, freed."""

from __future__ import annotations

import httpx

from headcount.capacity import events, huddles, sessions
from headcount.capacity.events import EventDraft
from headcount.capacity.huddles import HuddleDraft
from headcount.capacity.sessions import SessionDraft
from headcount.runtime import Runtime
from support.auth import organizer
from support.graphql import gql

ORG = organizer("org-gql-attendance")
OUTCOME = "__typename ... on Refusal { code detail }"


async def register(
    http: httpx.AsyncClient, event_id: str, who: str, party: int = 1
) -> dict[str, object]:
    data = await gql(
        http,
        f"""mutation($e: ID!, $n: Int!) {{ registerForEvent(eventId: $e, partySize: $n) {{
              {OUTCOME} ... on Registered {{ created registration {{ status partySize }} }}
            }} }}""",
        {"e": event_id, "n": party},
        as_user=who,
    )
    result: dict[str, object] = data["registerForEvent"]
    return result


async def registered(http: httpx.AsyncClient, event_id: str) -> tuple[int, bool]:
    data = await gql(
        http,
        """query($e: ID!) { capacity(eventId: $e) { ... on CapacitySummary {
             registrations { registered isFull } } } }""",
        {"e": event_id},
    )
    reg = data["capacity"]["registrations"]
    return reg["registered"], reg["isFull"]


async def test_register_until_full_then_a_cancel_frees_a_place(
    http: httpx.AsyncClient, runtime: Runtime
) -> None:
    event = await events.create_event(runtime, ORG, EventDraft(name="Reg", max_attendees=3))
    first = await register(http, event.id, "ana", party=2)
    assert first["__typename"] == "Registered"
    assert first["created"] is True
    again = await register(http, event.id, "ana", party=2)
    assert again["created"] is False, "registering twice counts once"
    assert (await register(http, event.id, "ben"))["__typename"] == "Registered"
    assert await registered(http, event.id) == (3, True)

    refused = await register(http, event.id, "cat")
    assert refused["__typename"] == "EventFull"
    assert refused["code"] == "event_full"
    assert await registered(http, event.id) == (3, True)

    cancel = await gql(
        http,
        f"""mutation($e: ID!) {{ cancelRegistration(eventId: $e) {{
              {OUTCOME} ... on Registration {{ status }} }} }}""",
        {"e": event.id},
        as_user="ben",
    )
    assert cancel["cancelRegistration"] == {"__typename": "Registration", "status": "CANCELLED"}
    assert await registered(http, event.id) == (2, False)
    assert (await register(http, event.id, "cat"))["__typename"] == "Registered"


async def test_rsvp_waitlists_and_leaving_promotes_the_head(
    http: httpx.AsyncClient, runtime: Runtime
) -> None:
    event = await events.create_event(runtime, ORG, EventDraft(name="Talks"))
    talk = await sessions.create_session(
        runtime, ORG, event.id, SessionDraft(title="Talk", max_participants=1)
    )
    rsvp = f"""mutation($s: ID!) {{ rsvpSession(sessionId: $s) {{
                 {OUTCOME} ... on Rsvp {{ status position }} }} }}"""
    outsider = await gql(http, rsvp, {"s": talk.id}, as_user="zed")
    assert outsider["rsvpSession"]["__typename"] == "NotRegistered"
    for who in ("ada", "bo", "cy"):
        await register(http, event.id, who)
    seated = (await gql(http, rsvp, {"s": talk.id}, as_user="ada"))["rsvpSession"]
    assert seated == {"__typename": "Rsvp", "status": "CONFIRMED", "position": None}
    queued = [
        (await gql(http, rsvp, {"s": talk.id}, as_user=w))["rsvpSession"] for w in ("bo", "cy")
    ]
    assert [(q["status"], q["position"]) for q in queued] == [("WAITLISTED", 1), ("WAITLISTED", 2)]

    leave = f"""mutation($s: ID!) {{ leaveSession(sessionId: $s) {{
                  {OUTCOME} ... on Rsvp {{ status }} }} }}"""
    assert (await gql(http, leave, {"s": talk.id}, as_user="ada"))["leaveSession"][
        "status"
    ] == "NONE"
    mine = """query($s: ID!) { myRsvp(sessionId: $s) { ... on Rsvp { status position } } }"""
    assert (await gql(http, mine, {"s": talk.id}, as_user="bo"))["myRsvp"] == {
        "status": "CONFIRMED",
        "position": None,
    }
    assert (await gql(http, mine, {"s": talk.id}, as_user="cy"))["myRsvp"]["position"] == 1


async def test_huddle_full_is_typed_and_leaving_makes_room(
    http: httpx.AsyncClient, runtime: Runtime
) -> None:
    event = await events.create_event(runtime, ORG, EventDraft(name="Huddles"))
    huddle = await huddles.create_huddle(runtime, ORG, event.id, HuddleDraft(name="H", capacity=1))
    join = f"""mutation($h: ID!) {{ joinHuddle(huddleId: $h) {{
                 {OUTCOME} ... on HuddleFull {{ huddleFull }}
                 ... on HuddleMembership {{ joined huddle {{ members isFull }} }} }} }}"""
    first = (await gql(http, join, {"h": huddle.id}, as_user="ed"))["joinHuddle"]
    assert first["huddle"] == {"members": 1, "isFull": True}
    full = (await gql(http, join, {"h": huddle.id}, as_user="flo"))["joinHuddle"]
    assert full["__typename"] == "HuddleFull"
    assert full["huddleFull"] is True
    leave = "mutation($h: ID!) { leaveHuddle(huddleId: $h) { ... on HuddleMembership { joined } } }"
    assert (await gql(http, leave, {"h": huddle.id}, as_user="ed"))["leaveHuddle"] == {
        "joined": False
    }
    assert (await gql(http, join, {"h": huddle.id}, as_user="flo"))["joinHuddle"]["__typename"] == (
        "HuddleMembership"
    )
