"""Reading the change log: an event's feed, the whole feed, and the audit trail.

Every page is read in one snapshot (`Database.snapshot()`), together with the log's
watermarks, so three answers stay exact:

* a cursor older than what retention kept is refused (410 `cursor_expired`, with the
  cursor to resume from) instead of silently skipping what was pruned;
* `next` may move past positions that hold nothing for this query: every position up to
  `last_position` is committed and visible in the same snapshot, so nothing can appear
  there later;
* a change shows up only once positioned, and positions follow commit order
  (ledger/changes.py), so a reader paging with `next` sees every change exactly once.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

from headcount.capacity.events import load_event, managed_event
from headcount.capacity.views import AuditEntry, AuditPage, ChangePage, ChangeView
from headcount.domain.changes import (
    ORGANIZER_TYPES,
    BadCursor,
    ChangeType,
    decode_cursor,
    encode_cursor,
)
from headcount.domain.errors import CursorExpired, Forbidden, InvalidCursor, InvalidRequest
from headcount.domain.identity import Principal
from headcount.domain.ids import is_well_formed
from headcount.ledger import changes
from headcount.ledger.changes import Change
from headcount.ledger.db import Tx
from headcount.runtime import Runtime

DEFAULT_LIMIT = 100
MAX_LIMIT = 1_000
_RESOURCE_TYPE = re.compile(r"[a-z][a-z_]{0,39}")


def change_types(names: Collection[str] | None, *, among: Collection[str] = ()) -> list[str]:
    """The `type` filter: known change types only (a typo must not read as "no changes").

    `among` narrows what may be asked (the audit trail's types); empty: any type.
    """
    wanted: list[str] = []
    for name in names or ():
        for part in name.split(","):
            if not part.strip():
                continue
            try:
                found = ChangeType(part.strip())
            except ValueError as exc:
                raise InvalidRequest(f"unknown change type {part.strip()!r}") from exc
            if among and found not in among:
                raise InvalidRequest(f"{found.value!r} is not a change this list shows")
            wanted.append(found.value)
    return sorted(set(wanted))


def _checked_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest(f"limit must be 1 to {MAX_LIMIT}")
    return limit


def change_view(change: Change) -> ChangeView:
    assert change.position is not None
    return ChangeView.from_row(change, id=f"chg_{change.id}", cursor=encode_cursor(change.position))


async def _read(
    tx: Tx,
    after: str | None,
    limit: int,
    *,
    event_id: str | None = None,
    types: Sequence[str] = (),
    resource: tuple[str, str | None] | None = None,
) -> tuple[list[Change], str, bool]:
    """(changes, next cursor, whether more may follow) after the cursor `after`."""
    marks = await changes.watermarks(tx)
    if after is None:
        position = marks.pruned_through  # from the oldest change still kept
    else:
        try:
            position = decode_cursor(after)
        except BadCursor as exc:
            raise InvalidCursor("this is not a change cursor; start without `after`") from exc
        if position > marks.last_position:
            raise InvalidCursor("this cursor is ahead of the change log")
        if position < marks.pruned_through:
            raise CursorExpired(
                "changes after this cursor were removed by retention; resume from "
                "`resume_after` (what lies between is gone)",
                resume_after=encode_cursor(marks.pruned_through),
            )
    found = await changes.page(
        tx,
        after=position,
        limit=_checked_limit(limit) + 1,
        event_id=event_id,
        types=types,
        resource=resource,
    )
    more = len(found) > limit
    found = found[:limit]
    if more:
        last = found[-1].position
        assert last is not None
        return found, encode_cursor(last), True
    # Nothing more up to the high-water mark, which this snapshot sees whole.
    return found, encode_cursor(max(position, marks.last_position)), False


def _may_read(principal: Principal, organizer_id: str) -> None:
    if not principal.manages(organizer_id):
        raise Forbidden("only the event's organizer (or the platform service) reads its changes")


async def event_changes(
    rt: Runtime,
    principal: Principal,
    event_id: str,
    *,
    after: str | None = None,
    limit: int = DEFAULT_LIMIT,
    types: Collection[str] | None = None,
) -> ChangePage:
    """The event's changes after `after`, in commit order (its organizer, or the service)."""
    wanted = change_types(types)
    async with rt.db.snapshot() as tx:
        event = await load_event(tx, event_id)
        _may_read(principal, event.organizer_id)
        found, next_, more = await _read(tx, after, limit, event_id=event.id, types=wanted)
    return ChangePage(changes=[change_view(c) for c in found], next=next_, has_more=more)


async def all_changes(
    rt: Runtime,
    principal: Principal,
    *,
    after: str | None = None,
    limit: int = DEFAULT_LIMIT,
    types: Collection[str] | None = None,
) -> ChangePage:
    """Every event's changes after `after`, in commit order: the platform service only."""
    if not principal.is_service:
        raise Forbidden("the whole change feed is for the platform service")
    wanted = change_types(types)
    async with rt.db.snapshot() as tx:
        found, next_, more = await _read(tx, after, limit, types=wanted)
    return ChangePage(changes=[change_view(c) for c in found], next=next_, has_more=more)


def _resource(resource_type: str | None, resource_id: str | None) -> tuple[str, str | None] | None:
    if resource_type is None:
        if resource_id is not None:
            raise InvalidRequest("resource_id needs resource_type (e.g. ticket_type)")
        return None
    if not _RESOURCE_TYPE.fullmatch(resource_type):
        raise InvalidRequest(f"resource_type {resource_type!r} is not a resource type")
    if resource_id is not None and not is_well_formed(resource_id):
        raise InvalidRequest(f"resource_id {resource_id!r} is not an id")
    return resource_type, resource_id


async def audit(
    rt: Runtime,
    principal: Principal,
    event_id: str,
    *,
    resource_type: str | None = None,
    resource_id: str | None = None,
    after: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> AuditPage:
    """Who changed which capacity of the event, when, from what to what (its organizer)."""
    resource = _resource(resource_type, resource_id)
    async with rt.db.snapshot() as tx:
        event = await managed_event(tx, principal, event_id)
        found, next_, more = await _read(
            tx, after, limit, event_id=event.id, types=sorted(ORGANIZER_TYPES), resource=resource
        )
    entries = [
        AuditEntry(
            id=f"chg_{c.id}",
            cursor=encode_cursor(c.position or 0),
            type=c.type,
            resource_type=c.resource_type,
            resource_id=c.resource_id,
            actor_sub=c.actor_sub,
            actor_role=c.actor_role,
            request_id=c.request_id,
            occurred_at=c.occurred_at,
            before=c.payload.get("before"),
            after=c.payload.get("after") or {},
        )
        for c in found
    ]
    return AuditPage(entries=entries, next=next_, has_more=more)
