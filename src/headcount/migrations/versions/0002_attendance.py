"""attendance: event registrations, sessions and their seats, waitlists (sessions and ticket types)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 09:09:58.983563
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from headcount.ledger.types import UTCDateTime

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "event_capacity",
        sa.Column("event_id", sa.String(length=80), nullable=False),
        sa.Column("registered", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "registered >= 0", name=op.f("ck_event_capacity_registered_non_negative")
        ),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_event_capacity_event_id_events")
        ),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_event_capacity")),
    )
    op.create_table(
        "registrations",
        sa.Column("id", sa.String(length=80), nullable=False),
        sa.Column("event_id", sa.String(length=80), nullable=False),
        sa.Column("attendee_id", sa.String(length=200), nullable=False),
        sa.Column("party_size", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("cancelled_at", UTCDateTime(), nullable=True),
        sa.CheckConstraint(
            "status IN ('active', 'cancelled')", name=op.f("ck_registrations_status")
        ),
        sa.CheckConstraint("party_size >= 1", name=op.f("ck_registrations_party_size_positive")),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_registrations_event_id_events")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registrations")),
        sa.UniqueConstraint("event_id", "attendee_id", name="uq_registrations_event_attendee"),
    )
    with op.batch_alter_table("registrations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_registrations_attendee_id"), ["attendee_id"], unique=False
        )

    op.create_table(
        "sessions",
        sa.Column("id", sa.String(length=80), nullable=False),
        sa.Column("event_id", sa.String(length=80), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("starts_at", UTCDateTime(), nullable=True),
        sa.Column("ends_at", UTCDateTime(), nullable=True),
        sa.Column("waitlist_enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_sessions_event_id_events")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sessions")),
    )
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sessions_event_id"), ["event_id"], unique=False)

    op.create_table(
        "session_capacity",
        sa.Column("session_id", sa.String(length=80), nullable=False),
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
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name=op.f("fk_session_capacity_session_id_sessions")
        ),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_session_capacity")),
    )
    op.create_table(
        "session_seats",
        sa.Column("session_id", sa.String(length=80), nullable=False),
        sa.Column("attendee_id", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("via", sa.String(length=20), nullable=False),
        sa.Column("confirmed_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("status IN ('confirmed', 'left')", name=op.f("ck_session_seats_status")),
        sa.CheckConstraint("via IN ('rsvp', 'waitlist')", name=op.f("ck_session_seats_via")),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name=op.f("fk_session_seats_session_id_sessions")
        ),
        sa.PrimaryKeyConstraint("session_id", "attendee_id", name=op.f("pk_session_seats")),
    )
    with op.batch_alter_table("session_seats", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_session_seats_attendee_id"), ["attendee_id"], unique=False
        )
        batch_op.create_index(
            "ix_session_seats_session_id_status", ["session_id", "status"], unique=False
        )

    op.create_table(
        "waitlist_entries",
        sa.Column("id", sa.String(length=80), nullable=False),
        sa.Column("event_id", sa.String(length=80), nullable=False),
        sa.Column("session_id", sa.String(length=80), nullable=True),
        sa.Column("ticket_type_id", sa.String(length=80), nullable=True),
        sa.Column("attendee_id", sa.String(length=200), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("offered_quantity", sa.Integer(), nullable=True),
        sa.Column("offer_expires_at", UTCDateTime(), nullable=True),
        sa.Column("order_id", sa.String(length=80), nullable=True),
        sa.Column("joined_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
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
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_waitlist_entries_event_id_events")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_waitlist_entries_order_id_orders")
        ),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name=op.f("fk_waitlist_entries_session_id_sessions")
        ),
        sa.ForeignKeyConstraint(
            ["ticket_type_id"],
            ["ticket_types.id"],
            name=op.f("fk_waitlist_entries_ticket_type_id_ticket_types"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_waitlist_entries")),
        sa.UniqueConstraint("session_id", "seq", name="uq_waitlist_entries_session_seq"),
        sa.UniqueConstraint("ticket_type_id", "seq", name="uq_waitlist_entries_ticket_type_seq"),
    )
    with op.batch_alter_table("waitlist_entries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_waitlist_entries_attendee_id"), ["attendee_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_waitlist_entries_event_id"), ["event_id"], unique=False
        )
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
        batch_op.drop_index(batch_op.f("ix_waitlist_entries_event_id"))
        batch_op.drop_index(batch_op.f("ix_waitlist_entries_attendee_id"))

    op.drop_table("waitlist_entries")
    with op.batch_alter_table("session_seats", schema=None) as batch_op:
        batch_op.drop_index("ix_session_seats_session_id_status")
        batch_op.drop_index(batch_op.f("ix_session_seats_attendee_id"))

    op.drop_table("session_seats")
    op.drop_table("session_capacity")
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sessions_event_id"))

    op.drop_table("sessions")
    with op.batch_alter_table("registrations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_registrations_attendee_id"))

    op.drop_table("registrations")
    op.drop_table("event_capacity")
