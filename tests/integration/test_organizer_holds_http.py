"""/events/{id}/holds over REST and GraphQL: the same service, problem codes for bad input,
and a refused request changes nothing (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import httpx

from headcount.domain.identity import Role
from support.api import create_event_with_stock
from support.auth import bearer
from support.graphql import gql

ORG = bearer("org-holds-http", Role.ORGANIZER)
SAM = bearer("sam-holds-http")


async def _stock(http: httpx.AsyncClient, total: int = 10) -> tuple[str, str]:
    event_id, (tt_id,) = await create_event_with_stock(
        http, total, organizer="org-holds-http", name="Holds over HTTP"
    )
    return event_id, tt_id


async def _state(http: httpx.AsyncClient, event_id: str, tt_id: str) -> tuple[Any, ...]:
    """What a refused request must leave as it was: the holds, the stock, the orders."""
    holds = await http.get(f"/api/v1/events/{event_id}/holds", headers=ORG)
    tt = await http.get(f"/api/v1/ticket-types/{tt_id}")
    mine = await http.get("/api/v1/orders", headers=SAM)
    seen = tt.json()
    return holds.json(), seen["quantity_reserved"], seen["quantity_sold"], mine.json()


def _problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code, response.json()


async def test_rest_create_split_release_redeem(http: httpx.AsyncClient) -> None:
    event_id, tt_id = await _stock(http)
    base = f"/api/v1/events/{event_id}/holds"
    made = await http.post(
        base,
        json={"name": "Sponsors", "ticket_type_id": tt_id, "quantity": 6, "redemption_code": "S1"},
        headers=ORG,
    )
    assert made.status_code == 201, made.text
    hold = made.json()
    assert (hold["quantity"], hold["redemption_code"]) == (6, "S1")
    split = await http.post(
        f"{base}/{hold['id']}/split", json={"name": "Press", "quantity": 2}, headers=ORG
    )
    assert split.status_code == 201, split.text
    assert (split.json()["source"]["quantity"], split.json()["split"]["quantity"]) == (4, 2)
    released = await http.post(
        f"{base}/{split.json()['split']['id']}/release", headers=ORG
    )  # no body: everything left
    assert (released.status_code, released.json()["quantity"]) == (200, 0)
    redeemed = await http.post(
        f"{base}/{hold['id']}/redeem", json={"quantity": 3, "code": "S1"}, headers=SAM
    )
    assert redeemed.status_code == 201, redeemed.text
    assert (redeemed.json()["owner_id"], redeemed.json()["status"]) == ("sam-holds-http", "pending")
    got = await http.get(f"{base}/{hold['id']}", headers=ORG)
    assert got.json()["quantity"] == 1
    tt = (await http.get(f"/api/v1/ticket-types/{tt_id}")).json()
    # 1 left in the hold, 3 in Sam's order; the split's 2 went back on sale.
    assert (tt["quantity_reserved"], tt["quantity_available"]) == (4, 6)


async def test_rest_bad_input_gets_problem_codes_and_changes_nothing(
    http: httpx.AsyncClient,
) -> None:
    event_id, tt_id = await _stock(http, total=5)
    base = f"/api/v1/events/{event_id}/holds"
    made = await http.post(
        base,
        json={"name": "Crew", "ticket_type_id": tt_id, "quantity": 2, "redemption_code": "C"},
        headers=ORG,
    )
    hold_id = made.json()["id"]
    before = await _state(http, event_id, tt_id)
    good = {"name": "x", "ticket_type_id": tt_id, "quantity": 1}
    for body in (
        {**good, "quantity": 0},
        {**good, "quantity": "1"},
        {**good, "quantity": True},
        {**good, "section": "x"},  # unknown fields are refused (pool_id is now a target)
        {"ticket_type_id": tt_id, "quantity": 1},
        {**good, "release_at": "2020-01-01T00:00:00"},
    ):
        answer = await http.post(base, json=body, headers=ORG)
        assert answer.status_code == 422, (body, answer.text)
        assert answer.json()["code"] in {"invalid_request", "invalid_quantity"}
    # A hold is on one ticket type or one pool: both, or neither, is its own refusal.
    _problem(
        await http.post(base, json={**good, "pool_id": "pool_x"}, headers=ORG), 422, "hold_target"
    )
    _problem(
        await http.post(base, json={"name": "x", "quantity": 1}, headers=ORG), 422, "hold_target"
    )
    _problem(
        await http.post(base, json={**good, "release_at": "2020-01-01T00:00:00Z"}, headers=ORG),
        422,
        "invalid_request",
    )
    as_json = {**ORG, "Content-Type": "application/json"}
    _problem(await http.post(base, content=b"{not json", headers=as_json), 400, "malformed_request")
    _problem(await http.post(base, json=good), 401, "unauthorized")
    _problem(await http.post(base, json=good, headers=SAM), 403, "forbidden")
    _problem(await http.post(base, json={**good, "quantity": 4}, headers=ORG), 409, "sold_out")
    _problem(
        await http.post("/api/v1/events/evt_nope/holds", json=good, headers=ORG), 404, "not_found"
    )
    _problem(
        await http.post(base, json={**good, "ticket_type_id": "tt_nope"}, headers=ORG),
        404,
        "not_found",
    )
    split = f"{base}/{hold_id}/split"
    _problem(
        await http.post(split, json={"name": "y", "quantity": 3}, headers=ORG), 409, "hold_short"
    )
    release = f"{base}/{hold_id}/release"
    _problem(await http.post(release, json={"quantity": 3}, headers=ORG), 409, "hold_short")
    _problem(await http.post(release, json={"quantity": -1}, headers=ORG), 422, "invalid_quantity")
    _problem(await http.post(release, headers=SAM), 403, "forbidden")
    redeem = f"{base}/{hold_id}/redeem"
    _problem(await http.post(redeem, json={"code": "WRONG"}, headers=SAM), 403, "hold_code_refused")
    _problem(await http.post(redeem, json={}, headers=SAM), 403, "hold_code_refused")
    _problem(
        await http.post(redeem, json={"quantity": 3, "code": "C"}, headers=SAM), 409, "hold_short"
    )
    _problem(await http.post(f"{base}/hold_nope/release", headers=ORG), 404, "not_found")
    _problem(await http.post(f"{base}/bad id!/release", headers=ORG), 404, "not_found")
    assert await _state(http, event_id, tt_id) == before


async def test_rest_create_is_idempotent_with_a_key(http: httpx.AsyncClient) -> None:
    event_id, tt_id = await _stock(http)
    base = f"/api/v1/events/{event_id}/holds"
    body = {"name": "Once", "ticket_type_id": tt_id, "quantity": 2}
    keyed = {**ORG, "Idempotency-Key": "hold-once"}
    first = await http.post(base, json=body, headers=keyed)
    again = await http.post(base, json=body, headers=keyed)
    assert first.json()["id"] == again.json()["id"]
    assert len((await http.get(base, headers=ORG)).json()) == 1
    _problem(
        await http.post(base, json={**body, "quantity": 3}, headers=keyed),
        422,
        "idempotency_key_reused",
    )


HOLD_FIELDS = "... on OrganizerHold { id quantity name }"
REFUSAL = "... on Refusal { code }"


async def test_graphql_create_split_release_redeem_and_refusals(http: httpx.AsyncClient) -> None:
    event_id, tt_id = await _stock(http)
    made = await gql(
        http,
        f"""mutation($e: ID!, $t: ID!) {{ createOrganizerHold(input: {{eventId: $e,
            ticketTypeId: $t, name: "VIP", quantity: 5, redemptionCode: "V"}})
            {{ {HOLD_FIELDS} {REFUSAL} }} }}""",
        {"e": event_id, "t": tt_id},
        headers=ORG,
    )
    hold = made["createOrganizerHold"]
    assert hold["quantity"] == 5

    async def on_hold(call: str, selection: str, *, headers: dict[str, str]) -> Any:
        """The answer to `call`, a mutation on this hold (`$h`), asked for `selection`."""
        query = f"mutation($h: ID!) {{ {call} {{ {selection} }} }}"
        answer = await gql(http, query, {"h": hold["id"]}, headers=headers)
        return answer[call.split("(", 1)[0]]

    split = await on_hold(
        'splitOrganizerHold(input: {id: $h, name: "Press", quantity: 2})',
        f"... on OrganizerHoldSplit {{ source {{ quantity }} split {{ id quantity }} }} {REFUSAL}",
        headers=ORG,
    )
    assert split["source"]["quantity"] == 3
    short = await on_hold(
        "releaseOrganizerHold(id: $h, quantity: 9)", f"__typename {REFUSAL}", headers=ORG
    )
    assert short == {"__typename": "HoldShort", "code": "hold_short"}
    released = await on_hold("releaseOrganizerHold(id: $h, quantity: 1)", HOLD_FIELDS, headers=ORG)
    assert released["quantity"] == 2
    wrong = await on_hold(
        'redeemOrganizerHold(id: $h, code: "NO")', f"__typename {REFUSAL}", headers=SAM
    )
    assert wrong["code"] == "hold_code_refused"
    zero = await on_hold(
        'redeemOrganizerHold(id: $h, quantity: 0, code: "V")', f"__typename {REFUSAL}", headers=SAM
    )
    assert zero["code"] == "invalid_quantity"
    order = await on_hold(
        'redeemOrganizerHold(id: $h, quantity: 2, code: "V")',
        "... on Order { ownerId status items { quantity } }",
        headers=SAM,
    )
    assert order == {
        "ownerId": "sam-holds-http",
        "status": "PENDING",
        "items": [{"quantity": 2}],
    }
    listed = await gql(
        http,
        """query($e: ID!) { organizerHolds(eventId: $e)
            { ... on OrganizerHoldList { holds { name quantity } } } }""",
        {"e": event_id},
        headers=ORG,
    )
    assert listed["organizerHolds"]["holds"] == [
        {"name": "VIP", "quantity": 0},
        {"name": "Press", "quantity": 2},
    ]
    # The same list as REST gives.
    rest = (await http.get(f"/api/v1/events/{event_id}/holds", headers=ORG)).json()
    assert [(h["name"], h["quantity"]) for h in rest] == [("VIP", 0), ("Press", 2)]
