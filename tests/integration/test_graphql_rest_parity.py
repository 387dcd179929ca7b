"""GraphQL and REST give the same answers for the same state, refusals included.

Both APIs call the same service functions; this test is what keeps a translation mistake
(a dropped field, a wrong status mapping, a different error code) from slipping through.
"""

from __future__ import annotations

import secrets
from typing import Any

import httpx

from headcount.domain.identity import Role
from support.auth import bearer
from support.graphql import gql, rest_normal, snake

ORGANIZER = "org-parity"
# Buyers of this module only: the per-user hold limit counts a user's pending orders in
# every event, and other modules share this database.
ANN, BOB, CY = (f"{name}-{secrets.token_hex(3)}" for name in ("ann", "bob", "cy"))

TICKET_TYPE_FIELDS = """id eventId name quantityTotal quantitySold quantityReserved
  quantityAvailable isSoldOut maxPerOrder salesStart salesEnd
  minPerOrder maxPerCustomer poolIds overCapacityBy stockBuckets releaseAfterExit"""
POOL_FIELDS = """id eventId name capacity overbookRatio admissionLimit maxPerCustomer
  quantityUsed quantityAvailable overCapacityBy isExhausted ticketTypeIds createdAt updatedAt"""
ORDER_FIELDS = (
    "id eventId ownerId status expiresAt createdAt paidAt items { ticketTypeId quantity }"
)
SESSION_FIELDS = """id eventId title description startsAt endsAt maxParticipants
  currentAttendance remaining isFull waitlistEnabled waitlistLength createdAt updatedAt"""
BOOTH_FIELDS = """id eventId name description tier chatEnabled videoEnabled maxVisitors visitors
  inGrace isFull createdAt updatedAt"""
ROOM_FIELDS = """id sessionId eventId name capacity status participants inGrace isFull createdAt
  closedAt"""
HUDDLE_FIELDS = "id eventId name topic capacity members available isFull version createdAt"
AREA_FIELDS = """id eventId parentId name maxOccupancy allowReentry checkoutAt inside remaining
  isFull warning createdAt updatedAt"""
REGISTRATION_FIELDS = "id eventId attendeeId partySize status createdAt updatedAt cancelledAt"
ENTRY_FIELDS = """id eventId sessionId ticketTypeId attendeeId quantity seq status position
  offeredQuantity offerExpiresAt orderId joinedAt updatedAt"""
CAPACITY_FIELDS = f"""eventId maxAttendees replicaLagMs
  tickets {{ total sold reserved available isSoldOut heldByOrganizer
    ticketTypes {{ {TICKET_TYPE_FIELDS} }} }}
  registrations {{ maxAttendees registered remaining isFull }}
  sessions {{ {SESSION_FIELDS} }}
  viewers {{ limit viewers inGrace available isFull }}
  booths {{ {BOOTH_FIELDS} }}
  breakoutRooms {{ {ROOM_FIELDS} }}
  huddles {{ {HUDDLE_FIELDS} }}
  pools {{ {POOL_FIELDS} }}
  eventTotal {{ maxAttendees registered tickets remaining overCapacityBy }}
  waitingRoom {{ id eventId ticketTypeIds opensAt activeLimit admitPerMinute passTtlSeconds
    order status createdAt updatedAt
    figures {{ queued activeBuyers admittedTotal admittedLastMinute medianWaitSeconds }} }}
  areas {{ {AREA_FIELDS} }}"""
EVENT_FIELDS = """id organizerId name description startsAt endsAt maxAttendees createdAt updatedAt
  virtualSettings { maxConcurrentViewers streamUrl }"""


async def rest(
    http: httpx.AsyncClient, method: str, path: str, who: str | None = None, **kwargs: Any
) -> httpx.Response:
    role = Role.ORGANIZER if who == ORGANIZER else Role.ATTENDEE
    headers = bearer(who, role) if who else {}
    return await http.request(method, "/api/v1" + path, headers=headers, **kwargs)


async def build_state(http: httpx.AsyncClient) -> dict[str, Any]:
    """An event with stock in every state: sold, held, released, and one type sold out."""
    made = await rest(
        http,
        "POST",
        "/events",
        ORGANIZER,
        json={
            "name": "Parity",
            "description": "same state, two APIs",
            "starts_at": "2030-05-01T09:00:00Z",
            "ends_at": "2030-05-01T18:00:00Z",
            "max_attendees": 12,
            "virtual_settings": {"max_concurrent_viewers": 12, "stream_url": "https://x.test/s"},
        },
    )
    assert made.status_code == 201, made.text
    event_id = made.json()["id"]
    ids = []
    for name, total, per_order in (("Floor", 10, 8), ("Balcony", 2, None)):
        tt = await rest(
            http,
            "POST",
            f"/events/{event_id}/ticket-types",
            ORGANIZER,
            json={"name": name, "quantity_total": total, "max_per_order": per_order},
        )
        assert tt.status_code == 201, tt.text
        ids.append(tt.json()["id"])
    floor, balcony = ids
    orders = {}
    for who, tt_id, qty in (
        (ANN, floor, 3),
        (ANN, balcony, 2),
        (BOB, floor, 1),
        (CY, floor, 2),
    ):
        response = await rest(
            http,
            "POST",
            "/orders",
            who,
            json={"event_id": event_id, "items": [{"ticket_type_id": tt_id, "quantity": qty}]},
        )
        assert response.status_code == 201, response.text
        orders[(who, tt_id)] = response.json()["id"]
    attendance = await build_attendance(http, event_id)
    paid = await rest(http, "POST", f"/orders/{orders[ANN, floor]}/confirm", ORGANIZER)
    assert paid.status_code == 200, paid.text
    cancelled = await rest(http, "POST", f"/orders/{orders[BOB, floor]}/cancel", BOB)
    assert cancelled.status_code == 200, cancelled.text
    return {
        "event_id": event_id,
        "floor": floor,
        "balcony": balcony,
        "orders": orders,
        **attendance,
    }


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


async def build_attendance(http: httpx.AsyncClient, event_id: str) -> dict[str, Any]:
    """Registrations, a session with a waitlist, one without, a full huddle, booth, room."""
    for who, party in ((ANN, 2), (BOB, 1), (CY, 1)):
        path = f"/events/{event_id}/registrations"
        ok(await rest(http, "POST", path, who, json={"party_size": party}))
    sessions = []
    for title, waitlist in (("Keynote", True), ("Workshop", False)):
        body = {"title": title, "max_participants": 1, "waitlist_enabled": waitlist}
        sessions.append(
            ok(await rest(http, "POST", f"/events/{event_id}/sessions", ORGANIZER, json=body))
        )
    talk, workshop = sessions
    for who in (ANN, BOB):  # ann takes the seat, bob waits
        ok(await rest(http, "POST", f"/sessions/{talk['id']}/rsvp", who))
    ok(await rest(http, "POST", f"/sessions/{workshop['id']}/rsvp", ANN))
    body = {"name": "Hallway", "capacity": 1}
    huddle = ok(await rest(http, "POST", f"/events/{event_id}/huddles", ORGANIZER, json=body))
    ok(await rest(http, "POST", f"/huddles/{huddle['id']}/join", ANN))
    body = {"name": "Acme", "max_visitors": 3}
    booth = ok(await rest(http, "POST", f"/events/{event_id}/booths", ORGANIZER, json=body))
    body = {"name": "Room A", "capacity": 2}
    path = f"/sessions/{talk['id']}/breakout-rooms"
    room = ok(await rest(http, "POST", path, ORGANIZER, json=body))
    return {
        "session": talk["id"],
        "workshop": workshop["id"],
        "huddle": huddle["id"],
        "booth": booth["id"],
        "room": room["id"],
    }


async def test_reads_agree(http: httpx.AsyncClient) -> None:
    state = await build_state(http)
    event_id = state["event_id"]

    event = await gql(
        http,
        f"query($id: ID!) {{ event(id: $id) {{ ... on Event {{ {EVENT_FIELDS} }} }} }}",
        {"id": event_id},
    )
    rest_event = (await rest(http, "GET", f"/events/{event_id}")).json()
    assert snake(event["event"]) == rest_normal(rest_event)

    capacity = await gql(
        http,
        f"""query($id: ID!) {{ capacity(eventId: $id) {{
              ... on CapacitySummary {{ {CAPACITY_FIELDS} }} }} }}""",
        {"id": event_id},
    )
    rest_capacity = (await rest(http, "GET", f"/events/{event_id}/capacity")).json()
    rest_capacity.pop("taken_at")
    rest_capacity.pop("as_of")  # both are the moment of each read
    assert snake(capacity["capacity"]) == rest_normal(rest_capacity)
    # A section's counts must be real figures, not a stale or empty copy.
    assert rest_capacity["tickets"]["sold"] == 3
    assert rest_capacity["tickets"]["reserved"] == 4

    listed = await gql(
        http,
        f"""query($id: ID!) {{ event(id: $id) {{
              ... on Event {{ ticketTypes {{ {TICKET_TYPE_FIELDS} }} }} }} }}""",
        {"id": event_id},
    )
    rest_listed = (await rest(http, "GET", f"/events/{event_id}/ticket-types")).json()
    assert snake(listed["event"]["ticketTypes"]) == rest_normal(rest_listed)

    for tt_id in (state["floor"], state["balcony"]):
        one = await gql(
            http,
            f"""query($id: ID!) {{ ticketType(id: $id) {{
                  ... on TicketType {{ {TICKET_TYPE_FIELDS} }} }} }}""",
            {"id": tt_id},
        )
        assert snake(one["ticketType"]) == rest_normal(
            (await rest(http, "GET", f"/ticket-types/{tt_id}")).json()
        )

    for who in (ANN, BOB, CY, ORGANIZER):
        role = Role.ORGANIZER if who == ORGANIZER else Role.ATTENDEE
        mine = await gql(
            http,
            f"""query($e: ID) {{ orders(eventId: $e) {{
                  ... on OrderList {{ orders {{ {ORDER_FIELDS} }} }} }} }}""",
            {"e": event_id},
            as_user=who,
            role=role,
        )
        rest_mine = (await rest(http, "GET", f"/orders?event_id={event_id}", who)).json()
        assert snake(mine["orders"]["orders"]) == rest_normal(rest_mine)
        assert rest_mine, f"{who} should see some orders"

    await reads_of_attendance_agree(http, state)

    for (who, _), order_id in state["orders"].items():
        one = await gql(
            http,
            f"query($id: ID!) {{ order(id: $id) {{ ... on Order {{ {ORDER_FIELDS} }} }} }}",
            {"id": order_id},
            as_user=who,
        )
        assert snake(one["order"]) == rest_normal(
            (await rest(http, "GET", f"/orders/{order_id}", who)).json()
        )


RSVP_FIELDS = f"sessionId attendeeId status position waitlistEntry {{ {ENTRY_FIELDS} }}"
WAITLIST_FIELDS = f"sessionId ticketTypeId waiting offered entries {{ {ENTRY_FIELDS} }}"
# The reads by one id, named by where the answer sits in `data` (the root field, then the
# list inside it, if any): (the root field's argument, the answer's type when it is not a
# refusal, the fields asked for).
READS_BY_ID = {
    "event.sessions": ("id", "Event", SESSION_FIELDS),
    "event.huddles": ("id", "Event", HUDDLE_FIELDS),
    "event.booths": ("id", "Event", BOOTH_FIELDS),
    "session": ("id", "Session", SESSION_FIELDS),
    "breakoutRooms.rooms": ("sessionId", "BreakoutRoomList", ROOM_FIELDS),
    "myRegistration": ("eventId", "Registration", REGISTRATION_FIELDS),
    "registrations.registrations": ("eventId", "RegistrationList", REGISTRATION_FIELDS),
    "myRsvp": ("sessionId", "Rsvp", RSVP_FIELDS),
    "sessionWaitlist": ("sessionId", "Waitlist", WAITLIST_FIELDS),
}


def read_query(where: str) -> str:
    """The query for the read `where` names, written out from `READS_BY_ID`: one table
    keeps every read's query in the same form, so none can drift from the others."""
    argument, on, fields = READS_BY_ID[where]
    root, *inside = where.split(".")
    for name in reversed(inside):
        fields = f"{name} {{ {fields} }}"
    return f"query($id: ID!) {{ {root}({argument}: $id) {{ ... on {on} {{ {fields} }} }} }}"


def reads(state: dict[str, Any]) -> list[tuple[str, str, str, str | None, str]]:
    """(query, variable id, REST path, caller, where the answer sits in `data`); the id
    GraphQL is asked with is the one the REST path names."""
    event, session = f"/events/{state['event_id']}", f"/sessions/{state['session']}"
    rest = {  # where: (the same read over REST, who asks)
        "event.sessions": (f"{event}/sessions", None),
        "event.huddles": (f"{event}/huddles", None),
        "event.booths": (f"{event}/booths", None),
        "session": (session, None),
        "breakoutRooms.rooms": (f"{session}/breakout-rooms", None),
        "myRegistration": (f"{event}/registrations/me", ANN),
        "registrations.registrations": (f"{event}/registrations", ORGANIZER),
        "myRsvp": (f"{session}/rsvp", BOB),
        "sessionWaitlist": (f"{session}/waitlist", ORGANIZER),
    }
    assert rest.keys() == READS_BY_ID.keys()
    return [
        (read_query(where), path.split("/")[2], path, who, where)
        for where, (path, who) in rest.items()
    ]


async def reads_of_attendance_agree(http: httpx.AsyncClient, state: dict[str, Any]) -> None:
    snapshot = (await rest(http, "GET", f"/events/{state['event_id']}/capacity")).json()
    assert snapshot["sessions"][0]["waitlist_length"] == 1, "the state has a waitlist"
    assert snapshot["registrations"]["registered"] == 4, "ann (party of 2), bob and cy"
    for query, variable, path, who, where in reads(state):
        role = Role.ORGANIZER if who == ORGANIZER else Role.ATTENDEE
        data: Any = await gql(http, query, {"id": variable}, as_user=who, role=role)
        for part in where.split("."):
            data = data[part]
        by_rest = await rest(http, "GET", path, who)
        assert by_rest.status_code == 200, by_rest.text
        assert snake(data) == rest_normal(by_rest.json()), where


REFUSAL = "... on Refusal { code title detail }"


async def test_refusals_agree(http: httpx.AsyncClient) -> None:
    """Each refusal is asked of REST, then of GraphQL on the unchanged state."""
    state = await build_state(http)
    event_id, floor, balcony = state["event_id"], state["floor"], state["balcony"]
    create = f"""mutation($input: CreateOrderInput!) {{ createOrder(input: $input) {{
        __typename {REFUSAL} }} }}"""

    def order_body(tt_id: str, quantity: int, event: str = event_id) -> dict[str, Any]:
        return {"event_id": event, "items": [{"ticket_type_id": tt_id, "quantity": quantity}]}

    def order_vars(body: dict[str, Any]) -> dict[str, Any]:
        return {
            "input": {
                "eventId": body["event_id"],
                "items": [
                    {"ticketTypeId": i["ticket_type_id"], "quantity": i["quantity"]}
                    for i in body["items"]
                ],
            }
        }

    cases = [
        ("sold_out", order_body(balcony, 1), "dee"),
        ("sold_out", order_body(floor, 6), "dee"),  # 5 left
        ("invalid_quantity", order_body(floor, 9), "dee"),  # over max_per_order
        ("not_found", order_body("tt_missing", 1), "dee"),
        ("not_found", order_body(floor, 1, "evt_missing"), "dee"),
        ("unauthorized", order_body(floor, 1), None),
    ]
    # Input the models reject: same code and title; the detail names the field the way
    # each API spells its input (REST `body.items.0.quantity`, GraphQL `items.0.quantity`).
    for body in (order_body(floor, 0), order_body(floor, -3)):
        problem = (await rest(http, "POST", "/orders", "dee", json=body)).json()
        by_gql = (await gql(http, create, order_vars(body), as_user="dee"))["createOrder"]
        assert (by_gql["code"], by_gql["title"]) == (problem["code"], problem["title"])
        assert by_gql["code"] == "invalid_quantity"
        assert problem["detail"].endswith(by_gql["detail"])
    for code, body, who in cases:
        by_rest = await rest(http, "POST", "/orders", who, json=body)
        assert by_rest.status_code >= 400, by_rest.text
        problem = by_rest.json()
        assert problem["code"] == code, problem
        by_gql = (await gql(http, create, order_vars(body), as_user=who))["createOrder"]
        assert {k: by_gql[k] for k in ("code", "title", "detail")} == {
            k: problem[k] for k in ("code", "title", "detail")
        }, code

    change = f"""mutation($id: ID!) {{ confirmOrder(id: $id) {{ __typename {REFUSAL} }} }}"""
    pending = state["orders"][CY, floor]
    for who, order_id, code in (
        (CY, pending, "forbidden"),  # owners do not confirm their own payment
        ("dee", pending, "not_found"),  # nor may strangers learn the order exists
        (ORGANIZER, state["orders"][BOB, floor], "conflict"),  # cancelled cannot be paid
    ):
        by_rest = await rest(http, "POST", f"/orders/{order_id}/confirm", who)
        problem = by_rest.json()
        assert problem["code"] == code, problem
        role = Role.ORGANIZER if who == ORGANIZER else Role.ATTENDEE
        by_gql = (await gql(http, change, {"id": order_id}, as_user=who, role=role))["confirmOrder"]
        assert {k: by_gql[k] for k in ("code", "title", "detail")} == {
            k: problem[k] for k in ("code", "title", "detail")
        }, code

    rsvp = f"mutation($id: ID!) {{ rsvpSession(sessionId: $id) {{ __typename {REFUSAL} }} }}"
    join = f"mutation($id: ID!) {{ joinHuddle(huddleId: $id) {{ __typename {REFUSAL} }} }}"
    register = f"""mutation($id: ID!) {{ registerForEvent(eventId: $id, partySize: 10) {{
        __typename {REFUSAL} }} }}"""
    attendance_cases: list[tuple[str, str, dict[str, Any] | None, str, str, str]] = [
        (
            "session_full",
            f"/sessions/{state['workshop']}/rsvp",
            None,
            rsvp,
            state["workshop"],
            CY,
        ),
        (
            "not_registered",
            f"/sessions/{state['session']}/rsvp",
            None,
            rsvp,
            state["session"],
            "dee",
        ),
        ("huddle_full", f"/huddles/{state['huddle']}/join", None, join, state["huddle"], BOB),
        (
            "event_full",
            f"/events/{event_id}/registrations",
            {"party_size": 10},
            register,
            event_id,
            "dee",
        ),
    ]
    for code, path, sent, mutation, variable, who in attendance_cases:
        problem = (await rest(http, "POST", path, who, json=sent)).json()
        assert problem["code"] == code, problem
        by_gql = next(iter((await gql(http, mutation, {"id": variable}, as_user=who)).values()))
        assert {k: by_gql[k] for k in ("code", "title", "detail")} == {
            k: problem[k] for k in ("code", "title", "detail")
        }, code

    after = (await rest(http, "GET", f"/events/{event_id}/capacity")).json()["tickets"]
    assert (after["sold"], after["reserved"]) == (3, 4), "refusals changed nothing"


async def test_virtual_settings_not_made_are_absent_in_rest_and_null_in_graphql(
    http: httpx.AsyncClient,
) -> None:
    """The typed view keeps REST's JSON as the organizer sent it: no key appears as null."""
    for sent in ({}, {"max_concurrent_viewers": 5}, {"stream_url": "https://x.test/s"}):
        body = {"name": "Settings", "virtual_settings": sent}
        made = ok(await rest(http, "POST", "/events", ORGANIZER, json=body))
        assert made["virtual_settings"] == sent
        event_id = made["id"]
        assert (await rest(http, "GET", f"/events/{event_id}")).json()["virtual_settings"] == sent
        by_gql = await gql(
            http,
            """query($id: ID!) { event(id: $id) { ... on Event {
                 virtualSettings { maxConcurrentViewers streamUrl } } } }""",
            {"id": event_id},
        )
        shown = snake(by_gql["event"])["virtual_settings"]
        assert shown == {"max_concurrent_viewers": None, "stream_url": None, **sent}
