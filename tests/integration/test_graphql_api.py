"""GraphQL through the real app (in process, both databases): auth, typed refusals, limits."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from headcount.capacity.events import EventDraft
from headcount.capacity.tickets import TicketTypeDraft
from headcount.domain.identity import Role
from headcount.runtime import Runtime
from support.auth import organizer
from support.graphql import gql
from support.seed import event_with_ticket_type

ORG = organizer("org-gql")

CREATE = """
mutation Create($input: CreateOrderInput!, $key: String) {
  createOrder(input: $input, idempotencyKey: $key) {
    __typename
    ... on Order { id status items { ticketTypeId quantity } }
    ... on Refusal { code title detail }
    ... on SoldOut { ticketTypeId requested }
    ... on InvalidQuantity { ticketTypeId maxPerOrder }
  }
}
"""
CONFIRM = """
mutation Confirm($id: ID!) {
  confirmOrder(id: $id) { __typename ... on Order { id status } ... on Refusal { code detail } }
}
"""
CANCEL = """
mutation Cancel($id: ID!) {
  cancelOrder(id: $id) { __typename ... on Order { id status } ... on Refusal { code detail } }
}
"""
STOCK = """
query Stock($id: ID!) {
  ticketType(id: $id) {
    __typename
    ... on TicketType { quantitySold quantityReserved quantityAvailable isSoldOut }
    ... on Refusal { code }
  }
}
"""


async def stock(rt: Runtime, total: int, *, max_per_order: int | None = None) -> tuple[str, str]:
    return await event_with_ticket_type(
        rt,
        ORG,
        EventDraft(name="GraphQL test", max_attendees=9),
        TicketTypeDraft(name="GA", quantity_total=total, max_per_order=max_per_order),
    )


def order_input(event_id: str, tt_id: str, quantity: int) -> dict[str, Any]:
    return {
        "input": {"eventId": event_id, "items": [{"ticketTypeId": tt_id, "quantity": quantity}]}
    }


async def counters(http: httpx.AsyncClient, tt_id: str) -> tuple[int, int, int]:
    seen = (await gql(http, STOCK, {"id": tt_id}))["ticketType"]
    return seen["quantitySold"], seen["quantityReserved"], seen["quantityAvailable"]


async def test_event_query_reports_capacity_and_ticket_types(
    http: httpx.AsyncClient, runtime: Runtime
) -> None:
    event_id, tt_id = await stock(runtime, 7)
    data = await gql(
        http,
        """query($id: ID!) { event(id: $id) { __typename ... on Event {
             name maxAttendees capacity { maxAttendees tickets { total available isSoldOut } }
             ticketTypes { id quantityTotal quantityAvailable } } } }""",
        {"id": event_id},
    )
    event = data["event"]
    assert event["__typename"] == "Event"
    assert event["maxAttendees"] == 9
    assert event["capacity"]["tickets"] == {"total": 7, "available": 7, "isSoldOut": False}
    assert event["ticketTypes"] == [{"id": tt_id, "quantityTotal": 7, "quantityAvailable": 7}]


async def test_order_lifecycle_holds_sells_and_refuses_with_typed_results(
    http: httpx.AsyncClient, runtime: Runtime
) -> None:
    event_id, tt_id = await stock(runtime, 3)
    held = (await gql(http, CREATE, order_input(event_id, tt_id, 2), as_user="gia"))["createOrder"]
    assert held["__typename"] == "Order"
    assert held["status"] == "PENDING"
    assert await counters(http, tt_id) == (0, 2, 1)

    refused = (await gql(http, CREATE, order_input(event_id, tt_id, 2), as_user="hal"))[
        "createOrder"
    ]
    assert refused["__typename"] == "SoldOut"
    assert refused["code"] == "sold_out"
    assert refused["ticketTypeId"] == tt_id
    assert refused["requested"] == 2
    assert await counters(http, tt_id) == (0, 2, 1), "a refusal changes nothing"

    by_owner = (await gql(http, CONFIRM, {"id": held["id"]}, as_user="gia"))["confirmOrder"]
    assert by_owner["__typename"] == "Forbidden"
    assert by_owner["code"] == "forbidden"
    by_stranger = (await gql(http, CONFIRM, {"id": held["id"]}, as_user="hal"))["confirmOrder"]
    assert by_stranger["__typename"] == "NotFound", "others' order ids are not disclosed"

    paid = (await gql(http, CONFIRM, {"id": held["id"]}, as_user=ORG.sub, role=Role.ORGANIZER))[
        "confirmOrder"
    ]
    assert paid == {"__typename": "Order", "id": held["id"], "status": "PAID"}
    assert await counters(http, tt_id) == (2, 0, 1)

    refund_by_owner = (await gql(http, CANCEL, {"id": held["id"]}, as_user="gia"))["cancelOrder"]
    assert refund_by_owner["__typename"] == "Forbidden"
    refunded = (await gql(http, CANCEL, {"id": held["id"]}, as_user=ORG.sub, role=Role.ORGANIZER))[
        "cancelOrder"
    ]
    assert refunded["status"] == "REFUNDED"
    assert await counters(http, tt_id) == (0, 0, 3)


async def test_pending_order_cancelled_by_its_owner_frees_the_stock(
    http: httpx.AsyncClient, runtime: Runtime
) -> None:
    event_id, tt_id = await stock(runtime, 1)
    held = (await gql(http, CREATE, order_input(event_id, tt_id, 1), as_user="ivy"))["createOrder"]
    assert await counters(http, tt_id) == (0, 1, 0)
    cancelled = (await gql(http, CANCEL, {"id": held["id"]}, as_user="ivy"))["cancelOrder"]
    assert cancelled["status"] == "CANCELLED"
    assert await counters(http, tt_id) == (0, 0, 1)


@pytest.mark.parametrize(
    ("quantity", "code"),
    [(0, "invalid_quantity"), (-5, "invalid_quantity"), (3, "invalid_quantity")],
)
async def test_bad_quantities_are_typed_refusals(
    http: httpx.AsyncClient, runtime: Runtime, quantity: int, code: str
) -> None:
    # 9: the fixture's max_attendees, which tickets count against too.
    event_id, tt_id = await stock(runtime, 9, max_per_order=2)
    result = (await gql(http, CREATE, order_input(event_id, tt_id, quantity), as_user="jo"))[
        "createOrder"
    ]
    assert result["__typename"] == "InvalidQuantity"
    assert result["code"] == code
    assert await counters(http, tt_id) == (0, 0, 9)


async def test_callers_without_a_valid_token_are_refused_as_unauthorized(
    http: httpx.AsyncClient, runtime: Runtime
) -> None:
    event_id, tt_id = await stock(runtime, 5)
    anonymous = (await gql(http, CREATE, order_input(event_id, tt_id, 1)))["createOrder"]
    assert anonymous["__typename"] == "Unauthorized"
    forged = (
        await gql(
            http,
            CREATE,
            order_input(event_id, tt_id, 1),
            headers={"Authorization": "Bearer not.a.jwt"},
        )
    )["createOrder"]
    assert forged["__typename"] == "Unauthorized"
    assert forged["code"] == "unauthorized"
    assert await counters(http, tt_id) == (0, 0, 5)
    me = await gql(http, "{ me { __typename sub role } viewer { sub role } }", as_user="kim")
    assert me["me"] == {"__typename": "Me", "sub": "kim", "role": "ATTENDEE"}
    assert me["viewer"] == {"sub": "kim", "role": "ATTENDEE"}, "the old name still answers"
    assert await gql(http, "{ me { sub } }") == {"me": None}


async def test_viewer_is_a_deprecated_alias_of_me(http: httpx.AsyncClient) -> None:
    fields = (
        await gql(
            http,
            """{ __type(name: "Query") { fields(includeDeprecated: true) {
                 name isDeprecated deprecationReason type { name } } } }""",
        )
    )["__type"]["fields"]
    by_name = {f["name"]: f for f in fields}
    assert by_name["me"]["type"] == by_name["viewer"]["type"] == {"name": "Me"}
    assert not by_name["me"]["isDeprecated"]
    assert by_name["viewer"]["isDeprecated"]
    assert "`me`" in by_name["viewer"]["deprecationReason"]


async def test_unknown_and_garbage_ids_are_not_found(http: httpx.AsyncClient) -> None:
    for bad in ("evt_missing", "'; drop table events; --", "x" * 500, ""):
        data = await gql(
            http,
            "query($id: ID!) { event(id: $id) { __typename ... on Refusal { code } } }",
            {"id": bad},
        )
        assert data["event"] == {"__typename": "NotFound", "code": "not_found"}


async def test_idempotency_key_returns_the_first_order(
    http: httpx.AsyncClient, runtime: Runtime
) -> None:
    event_id, tt_id = await stock(runtime, 5)
    variables = {**order_input(event_id, tt_id, 2), "key": "retry-1"}
    first = (await gql(http, CREATE, variables, as_user="lee"))["createOrder"]
    again = (await gql(http, CREATE, variables, as_user="lee"))["createOrder"]
    assert again["id"] == first["id"]
    assert await counters(http, tt_id) == (0, 2, 3)
    other = {**order_input(event_id, tt_id, 1), "key": "retry-1"}
    reused = (await gql(http, CREATE, other, as_user="lee"))["createOrder"]
    assert reused["__typename"] == "IdempotencyKeyReused"


async def test_own_orders_only_unless_organizer(http: httpx.AsyncClient, runtime: Runtime) -> None:
    event_id, tt_id = await stock(runtime, 5)
    for who in ("max", "max", "ned"):
        await gql(http, CREATE, order_input(event_id, tt_id, 1), as_user=who)
    query = """query($e: ID) { orders(eventId: $e) { __typename
                 ... on OrderList { orders { ownerId } } ... on Refusal { code } } }"""
    mine = (await gql(http, query, {"e": event_id}, as_user="max"))["orders"]
    assert sorted(o["ownerId"] for o in mine["orders"]) == ["max", "max"]
    everyone = (await gql(http, query, {"e": event_id}, as_user=ORG.sub, role=Role.ORGANIZER))[
        "orders"
    ]
    assert sorted(o["ownerId"] for o in everyone["orders"]) == ["max", "max", "ned"]
    anonymous = (await gql(http, query, {"e": event_id}))["orders"]
    assert anonymous == {"__typename": "Unauthorized", "code": "unauthorized"}


@pytest.mark.parametrize(
    "body",
    [
        {"query": "{ event(id: "},  # syntax error
        {"query": "{ nope }"},  # unknown field
        {"query": "{ event(id: true) { __typename } }"},  # wrong type
        {  # a quantity beyond GraphQL's 32-bit Int
            "query": 'mutation { createOrder(input: {eventId: "e", items: '
            '[{ticketTypeId: "t", quantity: 99999999999}]}) { __typename } }'
        },
        {"query": "{ " + "a: viewer { sub } " * 40 + "}"},  # too many aliases
        {"query": "{ events { events { " * 12 + "id" + " } }" * 12 + " }"},  # too deep
    ],
)
async def test_malformed_queries_are_client_errors_never_500(
    http: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    response = await http.post("/graphql", json=body)
    assert response.status_code in (200, 400), response.text
    errors = response.json().get("errors")
    assert errors, response.text
    assert all("Unexpected error" not in e["message"] for e in errors)


@pytest.mark.parametrize(
    ("content", "status"),
    [(b'{"nothing": "here"}', 400), (b"{not json", 400), (b"[1, 2]", 400)],
)
async def test_unparseable_requests_get_a_problem_body(
    http: httpx.AsyncClient, content: bytes, status: int
) -> None:
    response = await http.post(
        "/graphql", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "malformed_request"


async def test_outages_are_errors_with_a_code_and_internals_stay_hidden(
    http: httpx.AsyncClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    from headcount.domain.errors import ServiceUnavailable

    # The fault is injected under the service (operations hold their service functions from
    # import on, so patching the function's module name would not reach them).
    query = '{ event(id: "evt_any") { __typename } }'

    def down(*_: object, **__: object) -> None:
        raise ServiceUnavailable("database unreachable")

    # Reads run in a snapshot unit of work, writes in a transaction: both are down.
    for unit in ("transaction", "snapshot"):
        monkeypatch.setattr(runtime.db, unit, down)
    body = (await http.post("/graphql", json={"query": query})).json()
    assert body["errors"][0]["extensions"] == {"code": "service_unavailable"}
    assert body["errors"][0]["message"] == "database unreachable"

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("secret connection string postgres://user:pw@db")

    for unit in ("transaction", "snapshot"):
        monkeypatch.setattr(runtime.db, unit, broken)
    body = (await http.post("/graphql", json={"query": query})).json()
    assert body["errors"][0]["message"] == "Unexpected error."
    assert "secret" not in str(body)
