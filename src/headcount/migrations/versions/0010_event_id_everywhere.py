"""event_id on every ledger table an event owns: distribution by event needs no rewrite

Six tables named their event only through a parent row. Each gets `event_id`, backfilled
from that parent and NOT NULL, and every statement on the hot path now names it
(docs/scale-out.md; `tests/integration/test_event_scoped_writes.py` keeps it so):

* `order_items` ← `orders`; `ticket_stock_buckets`, `ticket_type_pools` ← `ticket_types`;
  `session_capacity`, `session_seats` ← `sessions`; `huddle_members` ← `huddles`.

No index and no key changes: every lookup of these rows leads by its parent's id, which is
unique across events, so an index on `event_id` would only cost each insert. Primary keys
become `(event_id, …)` in the step that distributes the tables (Citus requires it), not
before: on one PostgreSQL it would widen every key for nothing.
"""

import sqlalchemy as sa
from alembic import op

from headcount.migrations import columns

revision, down_revision = "0010", "0009"

# (table, its parent's id column, the parent table)
_COPIED = (
    ("order_items", "order_id", "orders"),
    ("ticket_stock_buckets", "ticket_type_id", "ticket_types"),
    ("ticket_type_pools", "ticket_type_id", "ticket_types"),
    ("session_capacity", "session_id", "sessions"),
    ("session_seats", "session_id", "sessions"),
    ("huddle_members", "huddle_id", "huddles"),
)


def upgrade() -> None:
    for table, parent_id, parent in _COPIED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(columns.key("event_id", nullable=True))
        child = sa.table(table, sa.column(parent_id), sa.column("event_id"))
        owner = sa.table(parent, sa.column("id"), sa.column("event_id"))
        of_parent = sa.select(owner.c.event_id).where(owner.c.id == child.c[parent_id])
        op.execute(child.update().values(event_id=of_parent.scalar_subquery()))
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column("event_id", existing_type=sa.String(length=80), nullable=False)


def downgrade() -> None:
    for table, _, _ in reversed(_COPIED):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("event_id")
