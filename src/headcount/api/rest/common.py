"""Parameters and response documentation shared by the REST routers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Header, Path

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        description="Retrying with the same key returns the first successful result.",
    ),
]


def id_path(what: str) -> Any:
    return Path(min_length=1, max_length=80, description=f"{what} id")


# The ids several routers take in their paths.
EventId = Annotated[str, id_path("event")]
TicketTypeId = Annotated[str, id_path("ticket type")]


PROBLEM = {"content": {"application/problem+json": {}}, "description": "Problem (RFC 9457)"}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI: every route documents the problem responses it can give."""
    return dict.fromkeys((*statuses, 400, 422), PROBLEM)
