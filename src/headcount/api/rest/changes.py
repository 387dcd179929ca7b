"""/changes: the change feed (an event's, or all of it) and an event's audit trail."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from headcount.api.auth import PrincipalDep, RuntimeDep
from headcount.api.rest.common import EventId, problems
from headcount.capacity import feed
from headcount.capacity.views import AuditPage, ChangePage

router = APIRouter(tags=["changes"])
After = Annotated[
    str | None,
    Query(description="a `cursor` or `next` from an earlier answer; omit to start at the oldest"),
]
Limit = Annotated[int, Query(ge=1, le=feed.MAX_LIMIT, description="changes per page")]
Types = Annotated[
    list[str] | None,
    Query(
        alias="type",
        description="only these change types (repeat it, or separate them with commas)",
    ),
]


async def page(
    after: After = None, limit: Limit = feed.DEFAULT_LIMIT, types: Types = None
) -> dict[str, Any]:
    """A page of the feed, as both feeds read it: `after` a cursor, `limit`, `types`."""
    return {"after": after, "limit": limit, "types": types}


Page = Annotated[dict[str, Any], Depends(page)]


@router.get("/events/{event_id}/changes", responses=problems(401, 403, 404, 410))
async def event_changes(
    rt: RuntimeDep, who: PrincipalDep, event_id: EventId, page: Page
) -> ChangePage:
    """The event's changes in commit order (its organizer, or the platform service).

    A malformed cursor is 422 `invalid_cursor`; one older than retention kept is 410
    `cursor_expired`, whose `resume_after` says where to go on.
    """
    return await feed.event_changes(rt, who, event_id, **page)


@router.get("/changes", responses=problems(401, 403, 410))
async def all_changes(rt: RuntimeDep, who: PrincipalDep, page: Page) -> ChangePage:
    """Every event's changes in commit order: for the platform service."""
    return await feed.all_changes(rt, who, **page)


@router.get("/events/{event_id}/audit", responses=problems(401, 403, 404, 410))
async def audit(
    rt: RuntimeDep,
    who: PrincipalDep,
    event_id: EventId,
    *,
    resource_type: Annotated[
        str | None, Query(max_length=40, description="e.g. ticket_type, pool, session")
    ] = None,
    resource_id: Annotated[str | None, Query(max_length=80)] = None,
    after: After = None,
    limit: Limit = feed.DEFAULT_LIMIT,
) -> AuditPage:
    """Who changed which capacity of the event, when, from what to what (its organizer)."""
    return await feed.audit(
        rt,
        who,
        event_id,
        resource_type=resource_type,
        resource_id=resource_id,
        after=after,
        limit=limit,
    )
