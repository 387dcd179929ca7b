"""attendance: event registrations, sessions and their seats, waitlists (sessions and ticket types)"""

from alembic import op

from headcount.migrations import columns

revision, down_revision = "0002", "0001"

# A waitlist entry waits for one resource, a session or a ticket type, and an offer made to
# it carries its quantity and deadline while it stands; its CHECKs sit with the conditions
# of its partial indexes, so the table's rules read in one place.
_WAITLIST_CHECKS = {
    "offer_fields": "(status = 'offered') = (offered_quantity IS NOT NULL AND offer_expires_at IS NOT NULL) OR status IN ('accepted', 'declined', 'expired')",
    "status": "status IN ('waiting', 'offered', 'promoted', 'accepted', 'declined', 'expired', 'left')",
    "one_resource": "(session_id IS NULL) <> (ticket_type_id IS NULL)",
    "offered_quantity": "offered_quantity IS NULL OR (offered_quantity >= 1 AND offered_quantity <= quantity)",
    "quantity_positive": "quantity >= 1",
    "seq_positive": "seq >= 1",
}
# One live entry per attendee and resource (partial unique indexes).
_LIVE_SESSION = "session_id IS NOT NULL AND status IN ('waiting', 'offered')"
_LIVE_TICKET_TYPE = "ticket_type_id IS NOT NULL AND status IN ('waiting', 'offered')"


def upgrade() -> None:
    columns.extension(
        "event_capacity",
        "event_id",
        "events",
        columns.number("registered"),
        checks={"registered_non_negative": "registered >= 0"},
    )
    columns.owned(
        "registrations",
        columns.subject("attendee_id"),
        columns.number("party_size"),
        columns.state(),
        *columns.stamps(),
        columns.moment("cancelled_at", nullable=True),
        checks={
            "status": "status IN ('active', 'cancelled')",
            "party_size_positive": "party_size >= 1",
        },
        unique={"uq_registrations_event_attendee": ("event_id", "attendee_id")},
        indexed=["attendee_id"],
    )
    columns.owned(
        "sessions",
        columns.label("title"),
        columns.text("description"),
        columns.moment("starts_at", nullable=True),
        columns.moment("ends_at", nullable=True),
        columns.flag("waitlist_enabled"),
        *columns.stamps(),
        indexed=["event_id"],
    )
    columns.extension(
        "session_capacity",
        "session_id",
        "sessions",
        columns.number("maximum_capacity"),
        columns.number("current_attendance"),
        checks={
            "not_overbooked": "current_attendance <= maximum_capacity",
            "attendance_non_negative": "current_attendance >= 0",
            "maximum_non_negative": "maximum_capacity >= 0",
        },
    )
    columns.table(
        "session_seats",
        columns.key("session_id"),
        columns.subject("attendee_id"),
        columns.state(),
        columns.state("via"),
        *columns.stamps("confirmed_at"),
        checks={"status": "status IN ('confirmed', 'left')", "via": "via IN ('rsvp', 'waitlist')"},
        references={"session_id": "sessions"},
        key=("session_id", "attendee_id"),
        indexed=["attendee_id"],
    )
    with op.batch_alter_table("session_seats", schema=None) as batch_op:
        batch_op.create_index(
            "ix_session_seats_session_id_status", ["session_id", "status"], unique=False
        )
    columns.owned(
        "waitlist_entries",
        columns.key("session_id", nullable=True),
        columns.key("ticket_type_id", nullable=True),
        columns.subject("attendee_id"),
        columns.number("quantity"),
        columns.number("seq"),
        columns.state(),
        columns.number("offered_quantity", nullable=True),
        columns.moment("offer_expires_at", nullable=True),
        columns.key("order_id", nullable=True),
        *columns.stamps("joined_at"),
        checks=_WAITLIST_CHECKS,
        references={
            "order_id": "orders",
            "session_id": "sessions",
            "ticket_type_id": "ticket_types",
        },
        unique={
            "uq_waitlist_entries_session_seq": ("session_id", "seq"),
            "uq_waitlist_entries_ticket_type_seq": ("ticket_type_id", "seq"),
        },
        indexed=["attendee_id", "event_id"],
    )
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
            **columns.where(_LIVE_SESSION),
        )
        batch_op.create_index(
            "uq_waitlist_entries_live_ticket_type",
            ["ticket_type_id", "attendee_id"],
            unique=True,
            **columns.where(_LIVE_TICKET_TYPE),
        )


def downgrade() -> None:
    with op.batch_alter_table("waitlist_entries", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_waitlist_entries_live_ticket_type", **columns.where(_LIVE_TICKET_TYPE)
        )
        batch_op.drop_index("uq_waitlist_entries_live_session", **columns.where(_LIVE_SESSION))
        batch_op.drop_index("ix_waitlist_entries_status_offer_expires_at")
    columns.drop_table("waitlist_entries", "event_id", "attendee_id")
    with op.batch_alter_table("session_seats", schema=None) as batch_op:
        batch_op.drop_index("ix_session_seats_session_id_status")
    columns.drop_table("session_seats", "attendee_id")
    op.drop_table("session_capacity")
    columns.drop_table("sessions", "event_id")
    columns.drop_table("registrations", "attendee_id")
    op.drop_table("event_capacity")
