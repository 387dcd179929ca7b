"""The transaction an organizer's change is decided in, at one moment.

The moment is stamped on the transaction before anything is read, so the thresholds its
statements record and the audit rows it writes carry the same time (`journal.stamp`).
Keyed changes get the same through `keyed.decided`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Protocol, TypeVar

from headcount.capacity.events import managed_event
from headcount.domain.identity import Principal
from headcount.ledger import journal
from headcount.ledger.db import Tx
from headcount.ledger.models import Event
from headcount.runtime import Runtime


class OfEvent(Protocol):
    """A row that belongs to one event (its organizer manages it)."""

    @property
    def event_id(self) -> str: ...


R = TypeVar("R", bound=OfEvent)


@asynccontextmanager
async def decision(rt: Runtime) -> AsyncIterator[tuple[Tx, datetime]]:
    """A transaction and the moment it decides at, stamped on it."""
    async with rt.db.transaction() as tx:
        now = rt.clock()
        journal.stamp(tx, now)
        yield tx, now


@asynccontextmanager
async def under_event(
    rt: Runtime, principal: Principal, event_id: str
) -> AsyncIterator[tuple[Tx, Event, datetime]]:
    """`decision` for a change under an event that `principal` must manage (404, then 403,
    before anything is written)."""
    async with decision(rt) as (tx, now):
        yield tx, await managed_event(tx, principal, event_id), now


@asynccontextmanager
async def under_row(
    rt: Runtime, principal: Principal, load: Callable[[Tx, str], Awaitable[R]], row_id: str
) -> AsyncIterator[tuple[Tx, R, datetime]]:
    """`decision` for a change to a row of an event (a pool, a session, a ticket type) that
    `principal` must manage: the row is loaded first, so a missing one is a 404, then the
    event's 403, before anything is written."""
    async with decision(rt) as (tx, now):
        row = await load(tx, row_id)
        await managed_event(tx, principal, row.event_id)
        yield tx, row, now
