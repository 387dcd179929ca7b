"""Places organizers create and everyone reads, one set of use cases for every kind.

Booths, breakout rooms and huddles (any entry of `capacity/spaces.py` with `managed`) are
created inside their parent, listed by it, read and changed the same way, and shown the
same way: a view takes the row's columns of its field names, plus the head count, the
places held in grace, the limit, what is left and whether the place is full. Live places
count heads in the presence store (people connected now, apart from places kept for
people reconnecting), read after the transaction so no database lock waits on Redis;
durable ones (huddles) keep the count in their row.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from headcount.capacity.events import load_event, require_manager
from headcount.capacity.inputs import Patch
from headcount.capacity.spaces import Managed, Space, V
from headcount.domain.errors import InvalidRequest, ServiceUnavailable
from headcount.domain.identity import Principal
from headcount.domain.ids import new_id
from headcount.ledger import journal, rows
from headcount.ledger import spaces as ledger
from headcount.ledger.db import Tx
from headcount.ledger.models import Event
from headcount.presence import Resource, Tally
from headcount.runtime import Runtime


@dataclass(frozen=True, slots=True)
class Heads:
    """Who is in a place: `present` (connected now, or a durable place's members) and the
    places `in_grace`; both count against the limit. None: the presence store is down."""

    present: int | None
    in_grace: int | None = 0

    @property
    def taken(self) -> int | None:
        if self.present is None or self.in_grace is None:
            return None
        return self.present + self.in_grace


def view_of(space: Space[V], row: Any, heads: Heads | int | None) -> V:
    """The place as its view shows it; a count of None: the presence store is unreachable."""
    if not isinstance(heads, Heads):
        heads = Heads(heads, None if heads is None else 0)
    limit, taken = space.limit(row), heads.taken
    shown = space.view.model_fields
    figures = {
        space.count_field: heads.present,
        "in_grace": heads.in_grace,
        "limit": limit,
        "available": None if limit is None or taken is None else max(0, limit - taken),
        "is_full": None if taken is None else (limit is not None and taken >= limit),
    }
    values = {name: getattr(row, name) for name in shown if name not in figures}
    values.update((name, value) for name, value in figures.items() if name in shown)
    return space.view.model_validate(values)


async def head_counts(rt: Runtime, places: Sequence[tuple[Space[Any], Any]]) -> list[Heads]:
    """Heads in each (space, row): every live one in one presence round trip (None while
    the store is unreachable), a closed one 0, a durable one from its row."""
    asked = [Resource(s.kind, row.id) for s, row in places if s.live and not s.is_closed(row)]
    live: dict[Resource, Tally] | None = {}
    if asked:
        try:
            live = await rt.presence.tallies(asked)
        except ServiceUnavailable:
            live = None

    def heads(space: Space[Any], row: Any) -> Heads:
        if not space.live:
            count: int = getattr(row, space.count_field)
            return Heads(count)
        if space.is_closed(row):
            return Heads(0)
        if live is None:
            return Heads(None, None)
        tally = live.get(Resource(space.kind, row.id), Tally())
        return Heads(tally.active, tally.in_grace)

    return [heads(space, row) for space, row in places]


async def views(rt: Runtime, space: Space[V], found: Sequence[Any]) -> list[V]:
    counts = await head_counts(rt, [(space, row) for row in found])
    return [view_of(space, row, heads) for row, heads in zip(found, counts, strict=True)]


async def require_organizer(tx: Tx, principal: Principal, row: Any, event_id: str) -> None:
    """Only the organizer of the event `row` belongs to (or is) may manage it."""
    event = row if isinstance(row, Event) else await load_event(tx, event_id)
    require_manager(principal, event)


def record(
    tx: Tx,
    space: Space[Any],
    what: str,
    row: Any,
    *,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any],
    at: datetime,
) -> None:
    """An organizer's change to a place, as `<resource>.<what>` in the change log and the
    audit trail (created, changed, closed)."""
    journal.organizer(
        tx,
        f"{space.change_kind}.{what}",
        event_id=space.event_of(row),
        resource=(space.change_kind, row.id),
        before=before,
        after=after,
        at=at,
    )


def _managed(space: Space[Any]) -> Managed:
    if space.managed is None:
        raise InvalidRequest(f"a {space.noun} is not created or changed here")
    return space.managed


async def create(
    rt: Runtime,
    principal: Principal,
    space: Space[V],
    parent_id: str,
    draft: BaseModel,
    *,
    place_id: str | None = None,
) -> V:
    managed = _managed(space)
    parent = managed.parent
    if not isinstance(draft, managed.draft):
        raise InvalidRequest(f"a {space.noun} is created from a {managed.draft.__name__}")
    now = rt.clock()
    async with rt.db.transaction() as tx:
        found = await rows.find(tx, parent.model, parent_id, noun=parent.noun)
        event_id = parent.event_of(found)
        await require_organizer(tx, principal, found, event_id)
        row = space.model(
            id=place_id or new_id(managed.id_prefix),
            **{"event_id": event_id, parent.column: found.id},
            **managed.initial,
            **draft.model_dump(),
            created_at=now,
            updated_at=now,
        )
        await ledger.add(tx, row)
        after = {parent.column: found.id, **draft.model_dump()}
        record(tx, space, "created", row, before=None, after=after, at=now)
    rt.signals.notify(event_id)
    return view_of(space, row, 0)


async def get(rt: Runtime, space: Space[V], place_id: str) -> V:
    async with rt.db.snapshot() as tx:
        row = await rows.find(tx, space.model, place_id, noun=space.noun)
    return (await views(rt, space, [row]))[0]


def reader(space: Space[V]) -> Callable[[Runtime, str], Awaitable[V]]:
    """`get` for one kind, as a plain `(rt, id)` call (GraphQL's resolvers take those)."""

    async def read(rt: Runtime, place_id: str) -> V:
        return await get(rt, space, place_id)

    return read


def lister(space: Space[V]) -> Callable[[Runtime, str], Awaitable[list[V]]]:
    """`listed` for one kind, as a plain `(rt, parent id)` call."""

    async def read(rt: Runtime, parent_id: str) -> list[V]:
        return await listed(rt, space, parent_id)

    return read


async def listed(rt: Runtime, space: Space[V], parent_id: str) -> list[V]:
    """The places in a parent (an event's booths, a session's rooms), oldest first."""
    parent = _managed(space).parent
    async with rt.db.snapshot(may_lag=True) as tx:
        found = await rows.find(tx, parent.model, parent_id, noun=parent.noun)
        places = await ledger.listed(tx, space.model, parent.column, found.id)
    return await views(rt, space, places)


async def update(
    rt: Runtime, principal: Principal, space: Space[V], place_id: str, patch: Patch
) -> V:
    """Change what was sent. A lower limit turns nobody out: it only stops newcomers."""
    managed = _managed(space)
    if not isinstance(patch, managed.patch):
        raise InvalidRequest(f"a {space.noun} is changed by a {managed.patch.__name__}")
    changes = patch.changes()
    async with rt.db.transaction() as tx:
        row = await rows.find(tx, space.model, place_id, noun=space.noun)
        await require_organizer(tx, principal, row, space.event_of(row))
        if changes:
            now = rt.clock()
            before = {name: getattr(row, name) for name in changes}
            await ledger.change(
                tx,
                space.model,
                row.id,
                {**changes, "updated_at": now},
                event_id=space.event_of(row),
            )
            row = await rows.find(tx, space.model, row.id, noun=space.noun)
            record(tx, space, "changed", row, before=before, after=changes, at=now)
    rt.signals.notify(space.event_of(row))
    return (await views(rt, space, [row]))[0]
