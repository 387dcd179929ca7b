"""attendance: event registrations, sessions and their seats, waitlists (sessions and ticket types)"""

import sqlalchemy as sa
from alembic import op

from headcount.migrations import columns

revision, down_revision = "0002", "0001"
branch_labels = depends_on = None


def upgrade() -> None:
    op.create_table(
        "event_capacity",
        columns.key("event_id"),
        sa.Column("registered", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "registered >= 0", name=op.f("ck_event_capacity_registered_non_negative")
        ),
        columns.reference("event_capacity", "event_id", "events"),
        columns.primary_key("event_capacity", "event_id"),
    )
    op.create_table(
        "registrations",
        columns.key(),
        columns.key("event_id"),
        columns.subject("attendee_id"),
        sa.Column("party_size", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        *columns.stamps(),
        columns.moment("cancelled_at", nullable=True),
        sa.CheckConstraint(
            "status IN ('active', 'cancelled')", name=op.f("ck_registrations_status")
        ),
        sa.CheckConstraint("party_size >= 1", name=op.f("ck_registrations_party_size_positive")),
        columns.reference("registrations", "event_id", "events"),
        columns.primary_key("registrations"),
        sa.UniqueConstraint("event_id", "attendee_id", name="uq_registrations_event_attendee"),
    )
    columns.index("registrations", "attendee_id")

    op.create_table(
        "sessions",
        columns.key(),
        columns.key("event_id"),
        columns.label("title"),
        sa.Column("description", sa.Text(), nullable=False),
        columns.moment("starts_at", nullable=True),
        columns.moment("ends_at", nullable=True),
        sa.Column("waitlist_enabled", sa.Boolean(), nullable=False),
        *columns.stamps(),
        columns.reference("sessions", "event_id", "events"),
        columns.primary_key("sessions"),
    )
    columns.index("sessions", "event_id")

    op.create_table(
        "session_capacity",
        columns.key("session_id"),
        sa.Column("maximum_capacity", sa.Integer(), nullable=False),
        sa.Column("current_attendance", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "current_attendance <= maximum_capacity",
            name=op.f("ck_session_capacity_not_overbooked"),
        ),
        sa.CheckConstraint(
            "current_attendance >= 0", name=op.f("ck_session_capacity_attendance_non_negative")
        ),
        sa.CheckConstraint(
            "maximum_capacity >= 0", name=op.f("ck_session_capacity_maximum_non_negative")
        ),
        columns.reference("session_capacity", "session_id", "sessions"),
        columns.primary_key("session_capacity", "session_id"),
    )
    op.create_table(
        "session_seats",
        columns.key("session_id"),
        columns.subject("attendee_id"),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("via", sa.String(length=20), nullable=False),
        columns.moment("confirmed_at"),
        columns.moment("updated_at"),
        sa.CheckConstraint("status IN ('confirmed', 'left')", name=op.f("ck_session_seats_status")),
        sa.CheckConstraint("via IN ('rsvp', 'waitlist')", name=op.f("ck_session_seats_via")),
        columns.reference("session_seats", "session_id", "sessions"),
        columns.primary_key("session_seats", "session_id", "attendee_id"),
    )
    columns.index("session_seats", "attendee_id")
    with op.batch_alter_table("session_seats", schema=None) as batch_op:
        batch_op.create_index(
            "ix_session_seats_session_id_status", ["session_id", "status"], unique=False
        )

    op.create_table(
        "waitlist_entries",
        columns.key(),
        columns.key("event_id"),
        columns.key("session_id", nullable=True),
        columns.key("ticket_type_id", nullable=True),
        columns.subject("attendee_id"),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("offered_quantity", sa.Integer(), nullable=True),
        columns.moment("offer_expires_at", nullable=True),
        columns.key("order_id", nullable=True),
        columns.moment("joined_at"),
        columns.moment("updated_at"),
        sa.CheckConstraint(
            "(status = 'offered') = (offered_quantity IS NOT NULL AND offer_expires_at IS NOT NULL) OR status IN ('accepted', 'declined', 'expired')",
            name=op.f("ck_waitlist_entries_offer_fields"),
        ),
        sa.CheckConstraint(
            "status IN ('waiting', 'offered', 'promoted', 'accepted', 'declined', 'expired', 'left')",
            name=op.f("ck_waitlist_entries_status"),
        ),
        sa.CheckConstraint(
            "(session_id IS NULL) <> (ticket_type_id IS NULL)",
            name=op.f("ck_waitlist_entries_one_resource"),
        ),
        sa.CheckConstraint(
            "offered_quantity IS NULL OR (offered_quantity >= 1 AND offered_quantity <= quantity)",
            name=op.f("ck_waitlist_entries_offered_quantity"),
        ),
        sa.CheckConstraint("quantity >= 1", name=op.f("ck_waitlist_entries_quantity_positive")),
        sa.CheckConstraint("seq >= 1", name=op.f("ck_waitlist_entries_seq_positive")),
        columns.reference("waitlist_entries", "event_id", "events"),
        columns.reference("waitlist_entries", "order_id", "orders"),
        columns.reference("waitlist_entries", "session_id", "sessions"),
        columns.reference("waitlist_entries", "ticket_type_id", "ticket_types"),
        columns.primary_key("waitlist_entries"),
        sa.UniqueConstraint("session_id", "seq", name="uq_waitlist_entries_session_seq"),
        sa.UniqueConstraint("ticket_type_id", "seq", name="uq_waitlist_entries_ticket_type_seq"),
    )
    columns.index("waitlist_entries", "attendee_id", "event_id")
    with op.batch_alter_table("waitlist_entries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_waitlist_entries_status_offer_expires_at",
            ["status", "offer_expires_at"],
            unique=False,
        )
        batch_op.create_index(
            "uq_waitlist_entries_live_session",
            ["session_id", "attendee_id"],
            unique=True,
            postgresql_where=sa.text("session_id IS NOT NULL AND status IN ('waiting', 'offered')"),
            sqlite_where=sa.text("session_id IS NOT NULL AND status IN ('waiting', 'offered')"),
        )
        batch_op.create_index(
            "uq_waitlist_entries_live_ticket_type",
            ["ticket_type_id", "attendee_id"],
            unique=True,
            postgresql_where=sa.text(
                "ticket_type_id IS NOT NULL AND status IN ('waiting', 'offered')"
            ),
            sqlite_where=sa.text("ticket_type_id IS NOT NULL AND status IN ('waiting', 'offered')"),
        )


def downgrade() -> None:
    with op.batch_alter_table("waitlist_entries", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_waitlist_entries_live_ticket_type",
            postgresql_where=sa.text(
                "ticket_type_id IS NOT NULL AND status IN ('waiting', 'offered')"
            ),
            sqlite_where=sa.text("ticket_type_id IS NOT NULL AND status IN ('waiting', 'offered')"),
        )
        batch_op.drop_index(
            "uq_waitlist_entries_live_session",
            postgresql_where=sa.text("session_id IS NOT NULL AND status IN ('waiting', 'offered')"),
            sqlite_where=sa.text("session_id IS NOT NULL AND status IN ('waiting', 'offered')"),
        )
        batch_op.drop_index("ix_waitlist_entries_status_offer_expires_at")
    columns.drop_index("waitlist_entries", "event_id", "attendee_id")
    op.drop_table("waitlist_entries")
    with op.batch_alter_table("session_seats", schema=None) as batch_op:
        batch_op.drop_index("ix_session_seats_session_id_status")
    columns.drop_index("session_seats", "attendee_id")
    op.drop_table("session_seats")
    op.drop_table("session_capacity")
    columns.drop_index("sessions", "event_id")
    op.drop_table("sessions")
    columns.drop_index("registrations", "attendee_id")
    op.drop_table("registrations")
    op.drop_table("event_capacity")
