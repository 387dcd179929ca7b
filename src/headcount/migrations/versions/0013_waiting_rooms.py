"""waiting rooms: one per event, the durable terms of its queue (ledger/waiting_rooms.py)"""

import sqlalchemy as sa
from alembic import op

from headcount.migrations import columns

# The branch's head is "0009"; the lead re-chains it at merge.
revision, down_revision = "0013", "0012"


def upgrade() -> None:
    columns.table(
        "waiting_rooms",
        columns.key(),
        columns.key("event_id"),
        sa.Column("ticket_type_ids", sa.JSON(), nullable=True),
        columns.moment("opens_at"),
        sa.Column("active_limit", sa.Integer(), nullable=False),
        sa.Column("admit_per_minute", sa.Integer(), nullable=False),
        sa.Column("pass_ttl", sa.Integer(), nullable=False),
        sa.Column("queue_order", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("secret", sa.String(length=100), nullable=False),
        *columns.stamps(),
        checks={
            "active_limit": "active_limit >= 1",
            "admit_per_minute": "admit_per_minute >= 1",
            "pass_ttl": "pass_ttl >= 1",
        },
        references={"event_id": "events"},
        unique={"uq_waiting_rooms_event_id": ("event_id",)},
    )


def downgrade() -> None:
    op.drop_table("waiting_rooms")
