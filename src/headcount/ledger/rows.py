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

from sqlalchemy import ColumnElement, and_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from headcount.domain.errors import NotFound
from headcount.domain.ids import is_well_formed
from headcount.ledger import locks
from headcount.ledger.distribution import event_column
from headcount.ledger.models import Base

Row = TypeVar("Row", bound=Base)


def the_row(model: type[Base], row_id: str, event_id: str | None) -> ColumnElement[bool]:
    """The row by its key, and by its event when known (docs/scale-out.md)."""
    by_key = model.__mapper__.primary_key[0] == row_id
    column = event_column(model.__table__)  # type: ignore[arg-type]
    if event_id is None or column is None:
        return by_key
    return and_(by_key, model.__table__.c[column] == event_id)


async def find(
    tx: AsyncSession,
    model: type[Row],
    row_id: str,
    *,
    noun: str,
    lock: bool = False,
    event_id: str | None = None,
) -> Row:
    """The row of `model` with primary key `row_id`, or `NotFound("no <noun> '<id>'")`.

    `lock=True` takes the row `locks.exclusive` (FOR UPDATE on PostgreSQL; SQLite's
    `BEGIN IMMEDIATE` already serialises writers). `event_id`, when the caller knows it,
    is named in the statement too (a row of another event is not found).
    """
    if not is_well_formed(row_id):
        raise NotFound(f"no {noun} {row_id!r}")
    query: Any = select(model).where(the_row(model, row_id, event_id))
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


async def change(
    tx: AsyncSession,
    model: type[Base],
    row_id: str,
    values: dict[str, Any],
    *,
    event_id: str | None,
) -> None:
    """`UPDATE <model> SET <values> WHERE id = :row_id [AND event_id = :event_id]`: one
    statement, no read first. `event_id` is None only for a table no event owns (or a
    repair across events, like reconcile's).

    Values may be SQL expressions over the row's own columns (computed by the database
    from the current row, e.g. an overhang from the committed use).
    """
    await tx.execute(
        update(model)
        .where(the_row(model, row_id, event_id))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
