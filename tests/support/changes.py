"""Reading the change log in tests: position what committed, then page an event's changes.

`Reader` follows one event like a consumer would (a cursor it moves), so each check sees
exactly the changes one step made: `await log.new()` after a call returns what it
recorded, and nothing is recorded by a step that was refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from headcount import origin
from headcount.capacity import sequencer
from headcount.domain.identity import Principal
from headcount.ledger import changes
from headcount.ledger.changes import Change
from headcount.runtime import Runtime


def note(tx: AsyncSession, event_id: str, label: str, at: datetime) -> None:
    """A placeholder change the log must keep or drop with its transaction: named by
    `label` so a test can tell which transaction's change it sees."""
    changes.record(
        tx,
        "order.created",
        event_id=event_id,
        resource=("order", label),
        payload={"label": label},
        at=at,
    )


class _RolledBack(Exception):
    """Raised inside a transaction to roll it back on purpose."""


async def noted(rt: Runtime, event_id: str, label: str, *, roll_back: bool = False) -> None:
    """One decision's change (`note`) in a transaction of its own: committed, or rolled
    back on purpose, when the change must go with it."""
    try:
        async with rt.db.transaction() as tx:
            note(tx, event_id, label, rt.clock())
            if roll_back:
                raise _RolledBack
    except _RolledBack:
        return


async def positioned(rt: Runtime) -> None:
    """Give every committed change its position (what the serve loop does by itself)."""
    await sequencer.sequence_pending(rt)


async def event_changes(rt: Runtime, event_id: str, after: int = 0) -> list[Change]:
    await positioned(rt)
    async with rt.db.snapshot() as tx:
        return await changes.page(tx, after=after, limit=100_000, event_id=event_id)


@dataclass
class Reader:
    rt: Runtime
    event_id: str
    after: int = 0
    seen: list[Change] = field(default_factory=list)

    async def new(self) -> list[Change]:
        found = await event_changes(self.rt, self.event_id, self.after)
        if found:
            self.after = found[-1].position or self.after
        self.seen += found
        return found

    async def types(self) -> list[str]:
        return [c.type for c in await self.new()]


def types_of(found: Iterable[Change]) -> list[str]:
    return [c.type for c in found]


def only(found: Iterable[Change], type_: str) -> Change:
    """The one change of `type_` among `found` (fails if there are none or several)."""
    matching = [c for c in found if c.type == type_]
    assert len(matching) == 1, f"{len(matching)} {type_} among {types_of(found)}"
    return matching[0]


def subset(payload: Mapping[str, Any], **expected: Any) -> None:
    """`payload` holds every `expected` member with that value."""
    wrong = {k: (payload.get(k), v) for k, v in expected.items() if payload.get(k) != v}
    assert not wrong, f"payload members (found, expected): {wrong} in {dict(payload)}"


@contextmanager
def acting(who: Principal, request_id: str | None = None) -> Iterator[None]:
    """What the API layer does per request: a request id, then the caller as the actor."""
    token = origin.begin_request(request_id or f"req-{who.sub}")
    origin.set_actor(who.sub, who.role.value)
    try:
        yield
    finally:
        origin.end_request(token)
