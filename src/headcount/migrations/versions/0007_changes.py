"""change log: every decision, positioned in commit order by the sequencer

* `changes`: one row per durable decision, inserted by the transaction that made it
  (ledger/changes.py). `position` is NULL until the sequencer gives it one.
* `change_log_state`: the sequencer's single row (its lock is the sequencer mutex), with
  the position high-water mark and the pruning watermark.
"""

import sqlalchemy as sa
from alembic import op

from headcount.migrations import columns

revision, down_revision = "0007", "0006"


def upgrade() -> None:
    columns.table(
        "changes",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("position", sa.BigInteger(), nullable=True),
        columns.key("event_id"),
        columns.string("type", 60),
        columns.string("resource_type", 40),
        columns.key("resource_id"),
        columns.string("actor_sub", 200, nullable=True),
        columns.string("actor_role", 20, nullable=True),
        columns.string("request_id", 100, nullable=True),
        columns.document("payload"),
        columns.moment("occurred_at"),
        unique={"uq_changes_position": ("position",)},
    )
    with op.batch_alter_table("changes", schema=None) as batch_op:
        batch_op.create_index("ix_changes_event_id_position", ["event_id", "position"])
        batch_op.create_index("ix_changes_resource", ["resource_type", "resource_id", "position"])
        batch_op.create_index("ix_changes_unsequenced", ["id"], **columns.where("position IS NULL"))
    state = columns.table(
        "change_log_state",
        columns.number("id"),
        sa.Column("last_position", sa.BigInteger(), nullable=False),
        sa.Column("pruned_through", sa.BigInteger(), nullable=False),
    )
    op.bulk_insert(state, [{"id": 1, "last_position": 0, "pruned_through": 0}])


def downgrade() -> None:
    op.drop_table("change_log_state")
    with op.batch_alter_table("changes", schema=None) as batch_op:
        batch_op.drop_index("ix_changes_unsequenced")
        batch_op.drop_index("ix_changes_resource")
        batch_op.drop_index("ix_changes_event_id_position")
    op.drop_table("changes")
