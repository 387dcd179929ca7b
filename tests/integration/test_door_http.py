"""The door over REST and GraphQL (the whole app over ASGI, SQLite and PostgreSQL): the same
service answers both, bad scans get their problem codes (REST) or typed refusals
(GraphQL), and a refused scan changes nothing either way.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from headcount.domain.identity import Role
from support.auth import bearer
from support.graphql import gql

ORG = "org-door-http"
ORG_HEADERS = bearer(ORG, Role.ORGANIZER)
API = "/api/v1"
OUTCOME = "__typename ... on Refusal { code detail }"


async def _made(answer: Any) -> Any:
    response = await answer
    assert response.status_code in (200, 201), response.text
    return response.json()


async def _door(http: httpx.AsyncClient, maximum: int) -> tuple[str, str, list[str]]:
    event = await _made(http.post(f"{API}/events", json={"name": "Door"}, headers=ORG_HEADERS))
    area = await _made(
        http.post(
            f"{API}/events/{event['id']}/areas",
            json={"name": "Hall", "max_occupancy": maximum},
            headers=ORG_HEADERS,
        )
    )
    people = []
    for n in range(3):
        made = await _made(
            http.post(f"{API}/events/{event['id']}/registrations", headers=bearer(f"h{n}"))
        )
        people.append(f"registration:{made['id']}")
    return event["id"], area["id"], people


async def _scan(
    http: httpx.AsyncClient, area_id: str, scan_id: str, credential: str, direction: str = "entry"
) -> httpx.Response:
    body = {"scan_id": scan_id, "credential": credential, "direction": direction}
    return await http.post(f"{API}/areas/{area_id}/scans", json=body, headers=ORG_HEADERS)


async def test_rest_bad_scans_get_problem_codes_and_change_nothing(
    http: httpx.AsyncClient,
) -> None:
    _, area_id, (ann, *_) = await _door(http, 1)
    other_event, _, (outsider, *_) = await _door(http, 1)
    assert (await _scan(http, area_id, "ok-1", ann)).status_code == 200
    before = (await http.get(f"{API}/areas/{area_id}")).json()
    cases = [
        ("registration:reg_missing", 404, "unknown_credential"),
        (outsider, 409, "credential_other_event"),
        ("<script>", 422, "malformed_credential"),
        ("ticket:ord_x", 422, "malformed_credential"),
        (ann, 409, "already_inside"),
    ]
    for n, (credential, status, code) in enumerate(cases):
        answer = await _scan(http, area_id, f"bad-{n}", credential)
        assert (answer.status_code, answer.json()["code"]) == (status, code), answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
    malformed = [
        {"scan_id": "", "credential": ann, "direction": "entry"},
        {"scan_id": "x y", "credential": ann, "direction": "entry"},
        {"scan_id": "x", "credential": ann, "direction": "sideways"},
        {"scan_id": "x", "credential": ann, "direction": "entry", "scanned_at": "yesterday"},
        # Year 1 with an offset cannot be turned into UTC: refused, never a 500.
        {
            "scan_id": "x",
            "credential": ann,
            "direction": "entry",
            "scanned_at": "0001-01-01T00:00:00+05:00",
        },
        {
            "scan_id": "x",
            "credential": ann,
            "direction": "entry",
            "scanned_at": "9999-12-31T23:00:00-05:00",
        },
        {"scan_id": "x", "credential": "", "direction": "entry"},
        {"scan_id": "x", "credential": ann, "direction": "entry", "extra": 1},
    ]
    for body in malformed:
        answer = await http.post(f"{API}/areas/{area_id}/scans", json=body, headers=ORG_HEADERS)
        assert answer.status_code == 422, (body, answer.text)
    attendee = await http.post(
        f"{API}/areas/{area_id}/scans",
        json={"scan_id": "x", "credential": ann, "direction": "entry"},
        headers=bearer("h0"),
    )
    assert attendee.status_code == 403
    assert (await http.get(f"{API}/areas/area_missing")).status_code == 404
    assert (await http.get(f"{API}/areas/{area_id}")).json() == before
    assert (await http.get(f"{API}/events/{other_event}/areas")).json()[0]["inside"] == 0


async def test_rest_batch_lists_each_scans_fate(http: httpx.AsyncClient) -> None:
    event_id, area_id, (ann, bob, cal) = await _door(http, 1)
    at = datetime(2026, 6, 1, 9, tzinfo=UTC).isoformat()
    scans = [
        {"area_id": area_id, "scan_id": "o1", "credential": ann, "direction": "entry"},
        {"area_id": area_id, "scan_id": "o2", "credential": bob, "direction": "entry"},
        {"area_id": area_id, "scan_id": "o3", "credential": cal, "direction": "exit"},
        {"area_id": area_id, "scan_id": "o4", "credential": "registration:reg_zz"},
    ]
    scans = [{"direction": "entry", **s, "scanned_at": at} for s in scans]
    batch = f"{API}/events/{event_id}/scans/batch"
    done = await _made(http.post(batch, json={"scans": scans}, headers=ORG_HEADERS))
    assert [r["status"] for r in done["results"]] == [
        "accepted",
        "conflicted",
        "conflicted",
        "rejected",
    ]
    assert [r["scan"] and r["scan"]["outcome"] for r in done["results"]] == [
        "accepted",
        "flagged",
        "not_inside",
        None,
    ]
    again = await _made(http.post(batch, json={"scans": scans}, headers=ORG_HEADERS))
    assert (again["duplicates"], again["rejected"]) == (3, 1)
    empty = await http.post(batch, json={"scans": []}, headers=ORG_HEADERS)
    assert empty.status_code == 422


async def test_graphql_scans_are_typed_and_match_rest(http: httpx.AsyncClient) -> None:
    event_id, area_id, (ann, bob, cal) = await _door(http, 2)
    scan = f"""mutation($a: ID!, $s: String!, $c: String!, $d: ScanDirection!) {{
        scan(areaId: $a, scanId: $s, credential: $c, direction: $d) {{
            {OUTCOME} ... on Scan {{ outcome inside admitted duplicate }} }} }}"""

    async def run(scan_id: str, credential: str, direction: str = "ENTRY") -> dict[str, Any]:
        found = await gql(
            http,
            scan,
            {"a": area_id, "s": scan_id, "c": credential, "d": direction},
            as_user=ORG,
            role=Role.ORGANIZER,
        )
        answer: dict[str, Any] = found["scan"]
        return answer

    first = await run("g1", ann)
    assert first == {
        "__typename": "Scan",
        "outcome": "accepted",
        "inside": 1,
        "admitted": True,
        "duplicate": False,
    }
    assert (await run("g1", ann))["duplicate"] is True
    assert (await run("g2", ann))["__typename"] == "AlreadyInside"
    assert (await run("g3", "nonsense"))["__typename"] == "MalformedCredential"
    assert (await run("g4", "registration:reg_nobody"))["__typename"] == "UnknownCredential"
    await run("g5", bob)
    full = await run("g6", cal)
    assert (full["__typename"], full["code"]) == ("AreaFull", "area_full")
    rest = await _scan(http, area_id, "r1", cal)
    assert rest.json()["code"] == "area_full"
    area = await gql(
        http,
        "query($id: ID!) { area(id: $id) { ... on Area { inside isFull warning } } }",
        {"id": area_id},
    )
    assert area["area"] == {"inside": 2, "isFull": True, "warning": True}
    rest_area = (await http.get(f"{API}/areas/{area_id}")).json()
    assert (rest_area["inside"], rest_area["is_full"]) == (2, True)
    listed = await gql(
        http,
        "query($e: ID!) { areas(eventId: $e) { ... on AreaList { areas { name inside } } } }",
        {"e": event_id},
    )
    assert listed["areas"]["areas"] == [{"name": "Hall", "inside": 2}]
    out = await gql(
        http,
        f"mutation($a: ID!, $c: String!) {{ checkOut(areaId: $a, credential: $c) {{ {OUTCOME}"
        " ... on Scan { source inside } } }",
        {"a": area_id, "c": ann},
        as_user=ORG,
        role=Role.ORGANIZER,
    )
    assert out["checkOut"] == {"__typename": "Scan", "source": "correction", "inside": 1}


async def test_graphql_offline_batch(http: httpx.AsyncClient) -> None:
    event_id, area_id, (ann, bob, _) = await _door(http, 1)
    batch = """mutation($e: ID!, $b: [OfflineScan!]!) { scanBatch(eventId: $e, batch: $b) {
        __typename ... on ScanBatch { accepted conflicted results { scanId status code } } } }"""
    scans = [
        {
            "areaId": area_id,
            "scanId": f"q{n}",
            "credential": who,
            "direction": "ENTRY",
            "scannedAt": f"2026-06-01T09:0{n}:00+00:00",
        }
        for n, who in enumerate((ann, bob, "registration:reg_none"))
    ]
    done = await gql(http, batch, {"e": event_id, "b": scans}, as_user=ORG, role=Role.ORGANIZER)
    assert done["scanBatch"] == {
        "__typename": "ScanBatch",
        "accepted": 1,
        "conflicted": 1,
        "results": [
            {"scanId": "q0", "status": "accepted", "code": None},
            {"scanId": "q1", "status": "conflicted", "code": None},
            {"scanId": "q2", "status": "rejected", "code": "unknown_credential"},
        ],
    }
