"""GraphQL over HTTP for tests, and a normaliser to compare its answers with REST's."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import httpx

from headcount.domain.identity import Role
from support.auth import bearer

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


async def gql(
    http: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    as_user: str | None = None,
    role: Role = Role.ATTENDEE,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """POST a query; returns `data`, failing the test on transport or GraphQL errors."""
    sent = dict(headers or {})
    if as_user is not None:
        sent.update(bearer(as_user, role))
    response = await http.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=sent
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert not body.get("errors"), body["errors"]
    data: dict[str, Any] = body["data"]
    return data


def snake(value: Any) -> Any:
    """camelCase keys → snake_case, enum names → REST values, RFC 3339 strings → datetimes.

    REST sends `2026-01-01T00:00:00Z` and GraphQL `2026-01-01T00:00:00+00:00`; both are
    the same instant, which is what the comparison must be about.
    """
    if isinstance(value, dict):
        return {
            _CAMEL.sub("_", k).lower(): _enum(k, snake(v))
            for k, v in value.items()
            if k != "__typename"
        }
    if isinstance(value, list):
        return [snake(v) for v in value]
    if isinstance(value, str) and len(value) >= 20 and value[4] == "-" and "T" in value:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return value
    return value


def _enum(key: str, value: Any) -> Any:
    return value.lower() if key in ("status", "role") and isinstance(value, str) else value


def rest_normal(value: Any) -> Any:
    """REST JSON through the same datetime normalisation (keys are already snake_case)."""
    return snake(value)
