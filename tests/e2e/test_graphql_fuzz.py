"""Fuzz the GraphQL schema of a live server with schemathesis.

Every query and mutation field is called with generated arguments and selections under an
organizer's and an attendee's token. GraphQL answers 200 with `errors` for most problems,
so the checks are: no 5xx, and no masked internal failure ("Unexpected error.") — every
error is a parse/validation error or a refusal carrying its `code`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import given
from schemathesis import Case, checks

from headcount.domain.identity import Role
from support.auth import bearer
from support.fuzzing import NO_ORDER_QUOTA, fuzz_settings, operations
from support.servers import Server, running_server

pytestmark = pytest.mark.slow

EXAMPLES_PER_FIELD = 10
MASKED = "Unexpected error."

FUZZ_SETTINGS = fuzz_settings(EXAMPLES_PER_FIELD)


@pytest.fixture(scope="module")
def graphql_server(sqlite_url: str, log_dir: Path) -> Iterator[Server]:
    with running_server(sqlite_url, log_dir, NO_ORDER_QUOTA) as server:
        yield server


def fuzz(server: Server, role: Role) -> list[str]:
    schema = schemathesis.graphql.from_url(server.base_url + "/graphql")
    headers = bearer(f"gql-fuzz-{role.value}", role)
    failures: list[str] = []
    for operation in operations(schema):

        @FUZZ_SETTINGS
        @given(case=operation.as_strategy())
        def run(case: Case[Any]) -> None:
            response = case.call(headers=headers, timeout=30)
            case.validate_response(response, checks=[checks.not_a_server_error])
            assert response.status_code < 500, response.text
            if response.status_code == 200:
                for error in response.json().get("errors") or []:
                    assert error.get("message") != MASKED, (case.body, error)

        try:
            run()
        except Exception as exc:
            failures.append(f"{operation.label}: {type(exc).__name__}: {exc}"[:3000])
    return failures


@pytest.mark.parametrize("role", [Role.ORGANIZER, Role.ATTENDEE], ids=str)
def test_every_graphql_field_answers_without_internal_errors(
    graphql_server: Server, role: Role
) -> None:
    failures = fuzz(graphql_server, role)
    assert not failures, "\n\n".join(failures)
