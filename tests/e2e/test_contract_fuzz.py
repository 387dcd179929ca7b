"""Fuzz the published contract of a live `headcount serve` process with schemathesis.

Every operation in `/openapi.json` is called with generated inputs (valid ones, and ones
that break the schema) under an organizer's and an attendee's token. Whatever comes in:
no 5xx, every error is an RFC 9457 problem with a stable `code`, and every answer matches
the schema the server publishes. Examples are bounded so the whole run stays short.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import given
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode, Response, checks
from schemathesis.specs.openapi.schemas import OpenApiSchema

from headcount.domain.identity import Role
from support.auth import bearer
from support.fuzzing import NO_ORDER_QUOTA, fuzz_settings, operations
from support.servers import Server, running_server

pytestmark = pytest.mark.slow

PROBLEM = "application/problem+json"
EXAMPLES_PER_OPERATION = 6  # per operation and role; every example is a real request
REJECTIONS = ["400", "401", "403", "404", "409", "410", "413", "415", "422", "429"]

# Which responses the published schema must account for.
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
]


@pytest.fixture(scope="module")
def fuzzed_server(sqlite_url: str, log_dir: Path) -> Iterator[Server]:
    with running_server(sqlite_url, log_dir, NO_ORDER_QUOTA) as server:
        yield server


@pytest.fixture(scope="module")
def api_schema(fuzzed_server: Server) -> OpenApiSchema:
    config = schemathesis.Config.from_dict(
        # A request that breaks the schema must be refused with a 4xx (a 5xx fails anyway).
        {"checks": {"negative_data_rejection": {"expected-statuses": REJECTIONS}}}
    )
    loaded: OpenApiSchema = schemathesis.openapi.from_url(
        fuzzed_server.base_url + "/openapi.json", config=config
    )
    return loaded


def problem_check(response: Response) -> None:
    """Every 4xx/5xx is a problem document with the members clients branch on."""
    if response.status_code < 400:
        return
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type.startswith(PROBLEM), (response.status_code, content_type, response.text)
    body = response.json()
    assert isinstance(body.get("code"), str), body
    assert body.get("status") == response.status_code, body
    assert isinstance(body.get("title"), str), body
    assert isinstance(body.get("detail"), str), body


FUZZ_SETTINGS = fuzz_settings(EXAMPLES_PER_OPERATION)


@pytest.fixture(scope="module")
def real_ids(fuzzed_server: Server) -> dict[str, str]:
    """Ids that exist, so generated requests also reach past the 404 of a random id."""
    org = bearer("fuzz-organizer", Role.ORGANIZER)
    with httpx.Client(base_url=fuzzed_server.base_url, timeout=30) as http:
        event = http.post("/api/v1/events", json={"name": "Fuzzed"}, headers=org).json()
        tt = http.post(
            f"/api/v1/events/{event['id']}/ticket-types",
            json={"name": "GA", "quantity_total": 1000},
            headers=org,
        ).json()
        order = http.post(
            "/api/v1/orders",
            json={"event_id": event["id"], "items": [{"ticket_type_id": tt["id"], "quantity": 1}]},
            headers=bearer("fuzz-attendee"),
        ).json()
    return {"event_id": event["id"], "ticket_type_id": tt["id"], "order_id": order["id"]}


def fuzz(schema: OpenApiSchema, role: Role, ids: dict[str, str]) -> list[str]:
    """Run every operation through three generators; return one line per failure."""
    headers = bearer(f"fuzz-{role.value}", role)
    failures: list[str] = []
    for operation in operations(schema):
        names = {p.name for p in operation.path_parameters}
        fixed = {name: value for name, value in ids.items() if name in names}
        strategies = [
            operation.as_strategy(GenerationMode.POSITIVE),
            operation.as_strategy(GenerationMode.NEGATIVE),
        ]
        if fixed:
            strategies.append(operation.as_strategy(GenerationMode.POSITIVE, path_parameters=fixed))
        for strategy in strategies:

            @FUZZ_SETTINGS
            @given(case=strategy)
            def run(case: Case[Any]) -> None:
                response = case.call(headers=headers, timeout=30)
                case.validate_response(response, checks=CHECKS, headers=headers)
                problem_check(response)

            try:
                run()
            except Unsatisfiable:
                continue  # nothing to break: the operation takes no input
            except Exception as exc:
                failures.append(f"{operation.label}: {type(exc).__name__}: {exc}"[:3000])
    return failures


@pytest.mark.parametrize("role", [Role.ORGANIZER, Role.ATTENDEE], ids=str)
def test_every_operation_answers_within_the_contract(
    api_schema: OpenApiSchema, real_ids: dict[str, str], role: Role
) -> None:
    failures = fuzz(api_schema, role, real_ids)
    assert not failures, "\n\n".join(failures)
