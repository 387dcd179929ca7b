"""organizer holds: stock an organizer set aside by name (ledger/allotments.py)

* `organizer_holds`: one row per named hold on a ticket type, with the units it still
  holds (counted in the type's `quantity_reserved`, its pools and the event cap, like a
  pending order's items), an optional redemption code and an optional release time that
  the sweeper honours (`ix_organizer_holds_release_at`).
"""

from alembic import op

from headcount.migrations import columns

# The lead re-chains this revision at merge; "0009" is the id 0009_change_baselines has.
revision, down_revision = "0012", "0011"


def upgrade() -> None:
    columns.owned(
        "organizer_holds",
        columns.key("ticket_type_id"),
        columns.label(),
        columns.number("quantity"),
        columns.string("redemption_code", 100, nullable=True),
        columns.moment("release_at", nullable=True),
        columns.subject("created_by"),
        *columns.stamps(),
        checks={"quantity_non_negative": "quantity >= 0"},
        references={"ticket_type_id": "ticket_types"},
        indexed=["event_id", "ticket_type_id"],
    )
    with op.batch_alter_table("organizer_holds", schema=None) as batch_op:
        batch_op.create_index("ix_organizer_holds_release_at", ["release_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("organizer_holds", schema=None) as batch_op:
        batch_op.drop_index("ix_organizer_holds_release_at")
    columns.drop_table("organizer_holds", "event_id", "ticket_type_id")
