"""The change feed and the audit trail: the same service calls as `api/rest/changes.py`."""

from __future__ import annotations

from typing import Any

import strawberry

from headcount.api.graphql.operations import field, mine
from headcount.api.graphql.refusals import result_union
from headcount.capacity import feed
from headcount.capacity.views import AuditPage, ChangePage
from headcount.domain.errors import CursorExpired, InvalidCursor

ChangePageResult: Any = result_union("ChangePageResult", ChangePage, InvalidCursor, CursorExpired)
AuditPageResult: Any = result_union("AuditPageResult", AuditPage, InvalidCursor, CursorExpired)


@strawberry.type
class ChangeQuery:
    @mine(feed.event_changes)
    def changes(
        self,
        event_id: strawberry.ID,
        after: str | None = None,
        limit: int = feed.DEFAULT_LIMIT,
        types: list[str] | None = None,
    ) -> ChangePageResult:
        """The event's changes in commit order after the cursor `after` (its organizer, or
        the platform service); go on with the page's `next`."""

    @field()
    async def all_changes(
        self,
        info: strawberry.Info,
        after: str | None = None,
        limit: int = feed.DEFAULT_LIMIT,
        types: list[str] | None = None,
    ) -> ChangePageResult:
        """Every event's changes in commit order: for the platform service."""
        return await feed.all_changes(
            info.context.runtime, info.context.principal(), after=after, limit=limit, types=types
        )

    @mine(feed.audit)
    def audit(
        self,
        event_id: strawberry.ID,
        *,
        resource_type: str | None = None,
        resource_id: strawberry.ID | None = None,
        after: str | None = None,
        limit: int = feed.DEFAULT_LIMIT,
    ) -> AuditPageResult:
        """Who changed which capacity of the event, when, from what to what (its organizer)."""
