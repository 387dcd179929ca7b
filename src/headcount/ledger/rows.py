"""One row by its public id, and the plain writes of whole rows.

`find` is the ledger's single "load or 404". Every resource (event, ticket type, order,
pool, session, booth, room, huddle, …) is looked up the same way: a malformed id is
refused before it reaches the database (so garbage gets a 404, never a 500), a missing row
is `NotFound` naming the noun the client used, and the row is re-read from the database,
not taken from the unit of work's identity map, so a caller that changed it with a bulk
UPDATE sees the new values.

The writes here change no counter: counters move only through the conditional
statements of their own modules (`inventory`, `draws`, `registrations`, `seats`, …).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import select, update
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

    `lock=True` takes the row `locks.exclusive` (FOR UPDATE on PostgreSQL; SQLite's
    `BEGIN IMMEDIATE` already serialises writers).
    """
    if not is_well_formed(row_id):
        raise NotFound(f"no {noun} {row_id!r}")
    query: Any = select(model).where(model.__mapper__.primary_key[0] == row_id)
    if lock:
        query = locks.exclusive(query)
    row: Row | None = (await tx.scalars(query.execution_options(populate_existing=True))).first()
    if row is None:
        raise NotFound(f"no {noun} {row_id!r}")
    return row


def new(model: type[Row], fields: Mapping[str, Any], now: datetime, **values: Any) -> Row:
    """A row made by a create request: the request's `fields` that `model` has a column
    for, then what the service decided (`values` win), created and updated `now`. Fields a
    request carries for other rows (a session's seat count, a type's pools) are left out."""
    columns = model.__table__.columns.keys()
    taken = {name: value for name, value in fields.items() if name in columns}
    return model(**{**taken, "created_at": now, "updated_at": now, **values})


async def add(tx: AsyncSession, *new: Base) -> None:
    """Insert new rows now, in order (a later row may refer to an earlier one)."""
    for row in new:
        tx.add(row)
        await tx.flush()


async def save(tx: AsyncSession) -> None:
    """Write the attributes changed on rows this unit of work loaded."""
    await tx.flush()


async def change(tx: AsyncSession, model: type[Base], row_id: str, values: dict[str, Any]) -> None:
    """`UPDATE <model> SET <values> WHERE id = :row_id`: one statement, no read first.

    Values may be SQL expressions over the row's own columns (computed by the database
    from the current row, e.g. an overhang from the committed use).
    """
    await tx.execute(
        update(model)
        .where(model.__mapper__.primary_key[0] == row_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
