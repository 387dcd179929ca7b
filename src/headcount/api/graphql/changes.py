"""The change feed and the audit trail: the same service calls as `api/rest/changes.py`."""

from __future__ import annotations

from typing import Any

import strawberry

from headcount.api.graphql.operations import mine, page
from headcount.api.graphql.refusals import result_union
from headcount.capacity import feed
from headcount.capacity.views import AuditPage, ChangePage
from headcount.domain.errors import CursorExpired, InvalidCursor

ChangePageResult: Any = result_union("ChangePageResult", ChangePage, InvalidCursor, CursorExpired)
AuditPageResult: Any = result_union("AuditPageResult", AuditPage, InvalidCursor, CursorExpired)


@strawberry.type
class ChangeQuery:
    @mine(feed.event_changes, extra=page(feed.DEFAULT_LIMIT))
    def changes(self, event_id: strawberry.ID) -> ChangePageResult:
        """The event's changes in commit order after the cursor `after` (its organizer, or
        the platform service); go on with the page's `next`."""

    @mine(feed.all_changes, extra=page(feed.DEFAULT_LIMIT))
    def all_changes(self) -> ChangePageResult:
        """Every event's changes in commit order: for the platform service."""

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
