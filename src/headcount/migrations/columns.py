"""Columns, keys and indexes the revisions spell the same way, table after table.

A revision must create the same schema for as long as it exists, so what a helper here
emits never changes: a new shape gets a new helper. The revisions that use them were
checked to create byte-identical schemas (`pg_dump --schema-only` on PostgreSQL,
`.schema` on SQLite) against the spelled-out versions they replaced.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, TypedDict, Unpack

import sqlalchemy as sa
from alembic import op

from headcount.ledger.types import UTCDateTime


def key(name: str = "id", *, nullable: bool = False) -> sa.Column[str]:
    """A generated id (`evt_…`, `tt_…`) or a reference to one."""
    return sa.Column(name, sa.String(length=80), nullable=nullable)


def subject(name: str) -> sa.Column[str]:
    """A person, by the `sub` their token carries."""
    return sa.Column(name, sa.String(length=200), nullable=False)


def label(name: str = "name") -> sa.Column[str]:
    """A name or title people read."""
    return sa.Column(name, sa.String(length=300), nullable=False)


def number(name: str, *, nullable: bool = False) -> sa.Column[int]:
    """A count, a limit or a quantity."""
    return sa.Column(name, sa.Integer(), nullable=nullable)


def state(name: str = "status") -> sa.Column[str]:
    """A word from a short closed list (a status, a source), spelled out by a CHECK."""
    return sa.Column(name, sa.String(length=20), nullable=False)


def string(name: str, length: int, *, nullable: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.String(length=length), nullable=nullable)


def text(name: str) -> sa.Column[str]:
    """Free text of any length."""
    return sa.Column(name, sa.Text(), nullable=False)


def flag(name: str) -> sa.Column[bool]:
    return sa.Column(name, sa.Boolean(), nullable=False)


def document(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    """A JSON value."""
    return sa.Column(name, sa.JSON(), nullable=nullable)


def moment(name: str, *, nullable: bool = False) -> sa.Column[datetime]:
    """A UTC timestamp (ledger/types.py)."""
    return sa.Column(name, UTCDateTime(), nullable=nullable)


def stamps(created: str = "created_at") -> tuple[sa.Column[datetime], sa.Column[datetime]]:
    """When the row came to be (`created_at`, or a name that says how: `joined_at`), then
    `updated_at`."""
    return moment(created), moment("updated_at")


def reference(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    """`table.column` → `target.id`, under the metadata naming convention."""
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}")
    )


def primary_key(table: str, *columns: str) -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint(*(columns or ("id",)), name=op.f(f"pk_{table}"))


def table(
    name: str,
    *items: sa.Column[Any] | sa.Constraint,
    checks: Mapping[str, str] | None = None,
    references: Mapping[str, str] | None = None,
    key: Sequence[str] = ("id",),
    unique: Mapping[str, Sequence[str]] | None = None,
    indexed: Sequence[str] = (),
) -> sa.Table:
    """CREATE TABLE `name` with its columns, then its named constraints, then one index per
    column in `indexed`.

    `checks` maps a check's name (`ck_<table>_<name>`) to its condition, `references` a
    column to the table whose id it holds, `unique` a constraint's full name to its columns.
    The constraints are made in that order (checks, references, key, unique), after any
    constraint among `items`: SQLite keeps the CREATE TABLE text, and its constraints stand
    in the order they were made.
    """
    made = op.create_table(
        name,
        *items,
        *(
            sa.CheckConstraint(condition, name=op.f(f"ck_{name}_{check}"))
            for check, condition in (checks or {}).items()
        ),
        *(reference(name, column, target) for column, target in (references or {}).items()),
        primary_key(name, *key),
        *(sa.UniqueConstraint(*cols, name=op.f(uq)) for uq, cols in (unique or {}).items()),
    )
    index(name, *indexed)
    return made


class Options(TypedDict, total=False):
    """`table`'s keywords other than `references`, as `owned` passes them on."""

    checks: Mapping[str, str]
    key: Sequence[str]
    unique: Mapping[str, Sequence[str]]
    indexed: Sequence[str]


def owned(
    name: str,
    *items: sa.Column[Any] | sa.Constraint,
    references: Mapping[str, str] | None = None,
    **options: Unpack[Options],
) -> sa.Table:
    """`table` for a row an event owns: `id` and `event_id` lead its columns, and the
    reference to `events` leads its references, as every such table was first written."""
    return table(
        name,
        key(),
        key("event_id"),
        *items,
        references={"event_id": "events", **(references or {})},
        **options,
    )


def extension(
    name: str,
    column: str,
    parent: str,
    *items: sa.Column[Any] | sa.Constraint,
    checks: Mapping[str, str] | None = None,
) -> sa.Table:
    """`table` for what a `parent` row has in a table of its own (a counter kept apart from
    the row it counts): one row per parent, keyed by `column`, its reference to the parent."""
    return table(
        name,
        key(column),
        *items,
        checks=checks,
        references={column: parent},
        key=(column,),
    )


def drop_table(name: str, *indexed: str) -> None:
    """The downgrade of `table`: its per-column indexes, then the table."""
    drop_index(name, *indexed)
    op.drop_table(name)


def index(table: str, *columns: str) -> None:
    """One conventionally named index per column (`ix_<table>_<column>`)."""
    if not columns:
        return
    with op.batch_alter_table(table, schema=None) as batch_op:
        for column in columns:
            batch_op.create_index(batch_op.f(f"ix_{table}_{column}"), [column], unique=False)


def where(condition: str) -> dict[str, Any]:
    """A partial index's condition, said to both backends."""
    clause = sa.text(condition)
    return {"postgresql_where": clause, "sqlite_where": clause}


def drop_index(table: str, *columns: str) -> None:
    if not columns:
        return
    with op.batch_alter_table(table, schema=None) as batch_op:
        for column in columns:
            batch_op.drop_index(batch_op.f(f"ix_{table}_{column}"))
