"""areas: the door — areas with a maximum occupancy, positions, scans, released tickets

* `areas`: an event's venue, halls and rooms (`parent_id`), each with an optional
  `max_occupancy`, its `inside` counter (credentials at it or below it) and an optional
  `checkout_at` (the auto checkout's moment).
* `area_positions`: one row per credential inside, keyed (event, credential): inside is
  the row existing, so nobody is counted twice.
* `scans`: every stored scan, unique per (event, scan_id); reconcile folds them.
* `ticket_releases` and `ticket_types.release_after_exit`: a unit given back to sale
  when its holder left the venue.

down_revision is this branch's real head ("0009"); the lead re-chains it at merge.
"""

import sqlalchemy as sa
from alembic import op

from headcount.migrations import columns

revision, down_revision = "0011", "0010"


def upgrade() -> None:
    columns.owned(
        "areas",
        columns.key("parent_id", nullable=True),
        columns.label(),
        columns.number("max_occupancy", nullable=True),
        columns.flag("allow_reentry"),
        columns.number("inside"),
        columns.moment("checkout_at", nullable=True),
        *columns.stamps(),
        checks={
            "inside_non_negative": "inside >= 0",
            "max_occupancy": "max_occupancy IS NULL OR max_occupancy >= 0",
        },
        references={"parent_id": "areas"},
        indexed=["event_id", "checkout_at"],
    )
    columns.table(
        "area_positions",
        columns.key("event_id"),
        columns.string("credential", 300),
        columns.key("area_id"),
        columns.moment("since"),
        references={"event_id": "events", "area_id": "areas"},
        key=("event_id", "credential"),
        indexed=["area_id"],
    )
    columns.table(
        "scans",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        columns.key("event_id"),
        columns.string("scan_id", 100),
        columns.key("area_id"),
        columns.string("credential", 300),
        columns.string("direction", 10),
        columns.state("source"),
        columns.state("outcome"),
        columns.moment("scanned_at"),
        columns.moment("recorded_at"),
        checks={
            "direction": "direction IN ('entry', 'exit')",
            "source": "source IN ('online', 'offline', 'correction')",
            "outcome": "outcome IN ('accepted', 'already_inside', 'not_inside', 'flagged')",
        },
        references={"event_id": "events", "area_id": "areas"},
        key=("seq",),
        unique={"uq_scans_event_scan": ("event_id", "scan_id")},
    )
    op.create_index("ix_scans_event_id_credential", "scans", ["event_id", "credential"])
    columns.table(
        "ticket_releases",
        columns.key("order_id"),
        columns.key("ticket_type_id"),
        columns.number("unit"),
        columns.key("event_id"),
        columns.moment("released_at"),
        references={"order_id": "orders", "ticket_type_id": "ticket_types"},
        key=("order_id", "ticket_type_id", "unit"),
    )
    with op.batch_alter_table("ticket_types", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("release_after_exit", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("ticket_types", schema=None) as batch_op:
        batch_op.drop_column("release_after_exit")
    op.drop_table("ticket_releases")
    op.drop_index("ix_scans_event_id_credential", table_name="scans")
    op.drop_table("scans")
    op.drop_table("area_positions")
    op.drop_table("areas")
