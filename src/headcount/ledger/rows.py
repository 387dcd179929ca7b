"""Finding one row by its public id: the ledger's single "load or 404".

Every resource (event, ticket type, order, pool, session, booth, room, huddle, …) is
looked up the same way: a malformed id is refused before it reaches the database (so
garbage gets a 404, never a 500), a missing row is `NotFound` naming the noun the client
used, and the row is re-read from the database, not taken from the unit of work's
identity map, so a caller that changed it with a bulk UPDATE sees the new values.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from headcount.domain.errors import NotFound
from headcount.domain.ids import is_well_formed
from headcount.ledger import locks
from headcount.ledger.models import Base

Row = TypeVar("Row", bound=Base)


async def find(
    tx: AsyncSession, model: type[Row], row_id: str, *, noun: str, lock: bool = False
) -> Row:
    """The row of `model` with primary key `row_id`, or `NotFound("no <noun> '<id>'")`.

    `lock=True` takes the row `FOR UPDATE` through `ledger/locks.py` (PostgreSQL; SQLite's
    `BEGIN IMMEDIATE` already serialises writers).
    """
    if not is_well_formed(row_id):
        raise NotFound(f"no {noun} {row_id!r}")
    query: Any = select(model).where(model.__mapper__.primary_key[0] == row_id)
    if lock:
        query = locks.for_update(query)
    row: Row | None = (await tx.scalars(query.execution_options(populate_existing=True))).first()
    if row is None:
        raise NotFound(f"no {noun} {row_id!r}")
    return row
