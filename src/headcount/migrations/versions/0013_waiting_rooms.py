"""waiting rooms: one per event, the durable terms of its queue (ledger/waiting_rooms.py)"""

from alembic import op

from headcount.migrations import columns

# The branch's head is "0009"; the lead re-chains it at merge.
revision, down_revision = "0013", "0012"


def upgrade() -> None:
    columns.owned(
        "waiting_rooms",
        columns.document("ticket_type_ids", nullable=True),
        columns.moment("opens_at"),
        columns.number("active_limit"),
        columns.number("admit_per_minute"),
        columns.number("pass_ttl"),
        columns.string("queue_order", 10),
        columns.state(),
        columns.string("secret", 100),
        *columns.stamps(),
        checks={
            "active_limit": "active_limit >= 1",
            "admit_per_minute": "admit_per_minute >= 1",
            "pass_ttl": "pass_ttl >= 1",
        },
        unique={"uq_waiting_rooms_event_id": ("event_id",)},
    )


def downgrade() -> None:
    op.drop_table("waiting_rooms")
