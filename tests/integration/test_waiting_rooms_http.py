"""Waiting rooms over REST and GraphQL (the whole app in process): the problem body of the
gate, the organizer's routes, and a visitor's way from the queue to an order in both APIs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from headcount.domain.identity import Role
from support.api import create_event_with_stock
from support.auth import bearer
from support.graphql import gql

ORG = "org-queue-http"


async def with_room(http: httpx.AsyncClient, **terms: object) -> tuple[str, str]:
    event_id, (tt,) = await create_event_with_stock(http, 50, organizer=ORG)
    body = {
        "opens_at": (datetime.now(UTC) - timedelta(seconds=1)).isoformat(),
        "active_limit": 1,
        "admit_per_minute": 600,
        **terms,
    }
    made = await http.post(
        f"/api/v1/events/{event_id}/waiting-room",
        json=body,
        headers=bearer(ORG, Role.ORGANIZER),
    )
    assert made.status_code == 201, made.text
    assert made.json()["status"] == "open"
    assert made.json()["pass_ttl_seconds"] == 600
    return event_id, tt


async def test_rest_gate_queue_and_order(http: httpx.AsyncClient) -> None:
    event_id, tt = await with_room(http)
    line = {"event_id": event_id, "items": [{"ticket_type_id": tt, "quantity": 1}]}
    refused = await http.post("/api/v1/orders", json=line, headers=bearer("ann"))
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["code"] == "queue_pass_required"

    ann = await http.post(f"/api/v1/events/{event_id}/queue", headers=bearer("ann"))
    bob = await http.post(f"/api/v1/events/{event_id}/queue", headers=bearer("bob"))
    assert ann.status_code == bob.status_code == 200
    assert ann.json()["state"] == "admitted"
    assert (bob.json()["state"], bob.json()["position"], bob.json()["people_ahead"]) == (
        "waiting",
        1,
        0,
    )
    ticket = await http.get(f"/api/v1/queue/{bob.json()['ticket']}")
    assert ticket.json()["position"] == 1
    assert (await http.get("/api/v1/queue/qt1.bogus.x.y.z")).status_code == 404

    made = await http.post(
        "/api/v1/orders",
        json={**line, "queue_pass": ann.json()["queue_pass"]},
        headers=bearer("ann"),
    )
    assert made.status_code == 201, made.text

    organizer = bearer(ORG, Role.ORGANIZER)
    patched = await http.patch(
        f"/api/v1/events/{event_id}/waiting-room",
        json={"admit_per_minute": 1200},
        headers=organizer,
    )
    assert patched.status_code == 200
    assert patched.json()["admit_per_minute"] == 1200
    bad = await http.patch(
        f"/api/v1/events/{event_id}/waiting-room", json={"active_limit": 0}, headers=organizer
    )
    assert bad.status_code == 422
    seen = await http.get(f"/api/v1/events/{event_id}/waiting-room", headers=organizer)
    assert seen.json()["figures"]["admitted_total"] == 1
    left = await http.delete(f"/api/v1/queue/{bob.json()['ticket']}", headers=bearer("bob"))
    assert left.json()["state"] == "gone"


async def test_graphql_join_and_order_with_the_pass(http: httpx.AsyncClient) -> None:
    event_id, tt = await with_room(http)
    joined = await gql(
        http,
        """mutation($e: ID!) { joinQueue(eventId: $e) {
             __typename ... on QueueTicket { state ticket queuePass position } } }""",
        {"e": event_id},
        as_user="gail",
    )
    ticket = joined["joinQueue"]
    assert (ticket["__typename"], ticket["state"]) == ("QueueTicket", "ADMITTED")
    create = """mutation($input: CreateOrderInput!) { createOrder(input: $input) {
        __typename ... on Refusal { code } ... on Order { status } } }"""
    items = [{"ticketTypeId": tt, "quantity": 1}]
    refused = await gql(
        http, create, {"input": {"eventId": event_id, "items": items}}, as_user="gail"
    )
    assert refused["createOrder"] == {
        "__typename": "QueuePassRequired",
        "code": "queue_pass_required",
    }
    made = await gql(
        http,
        create,
        {"input": {"eventId": event_id, "items": items, "queuePass": ticket["queuePass"]}},
        as_user="gail",
    )
    assert made["createOrder"]["status"] == "PENDING"
    seen = await gql(
        http,
        """query($t: String!) { queueTicket(ticket: $t) { ... on QueueTicket { state } } }""",
        {"t": ticket["ticket"]},
    )
    assert seen["queueTicket"]["state"] == "GONE"
    room = await gql(
        http,
        """query($e: ID!) { waitingRoom(eventId: $e) { ... on WaitingRoom {
             status activeLimit figures { admittedTotal activeBuyers } } } }""",
        {"e": event_id},
        as_user=ORG,
        role=Role.ORGANIZER,
    )
    assert room["waitingRoom"] == {
        "status": "OPEN",
        "activeLimit": 1,
        "figures": {"admittedTotal": 1, "activeBuyers": 0},
    }
