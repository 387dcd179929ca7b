"""foundation: events, ticket inventory, orders, idempotency

Revision ID: 0001
Revises:
Create Date: 2026-11-24 09:01:55.518432
"""

from alembic import op

from headcount.migrations import columns

revision, down_revision = "0001", None


def upgrade() -> None:
    columns.table(
        "events",
        columns.key(),
        columns.subject("organizer_id"),
        columns.label(),
        columns.text("description"),
        columns.moment("starts_at", nullable=True),
        columns.moment("ends_at", nullable=True),
        columns.number("max_attendees", nullable=True),
        columns.document("virtual_settings"),
        *columns.stamps(),
        checks={"max_attendees": "max_attendees IS NULL OR max_attendees >= 0"},
        indexed=["organizer_id"],
    )
    columns.table(
        "idempotency_records",
        columns.subject("owner_id"),
        columns.string("scope", 200),
        columns.string("key", 200),
        columns.string("fingerprint", 64),
        columns.document("response"),
        columns.moment("created_at"),
        key=("owner_id", "scope", "key"),
        indexed=["created_at"],
    )
    columns.owned(
        "orders",
        columns.subject("owner_id"),
        columns.state(),
        columns.moment("expires_at"),
        *columns.stamps(),
        columns.moment("paid_at", nullable=True),
        checks={"status": "status IN ('pending', 'paid', 'cancelled', 'expired', 'refunded')"},
        indexed=["event_id", "owner_id"],
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index("ix_orders_status_expires_at", ["status", "expires_at"], unique=False)
    columns.owned(
        "ticket_types",
        columns.label(),
        columns.number("quantity_total"),
        columns.number("quantity_sold"),
        columns.number("quantity_reserved"),
        columns.number("max_per_order", nullable=True),
        columns.moment("sales_start", nullable=True),
        columns.moment("sales_end", nullable=True),
        *columns.stamps(),
        checks={
            "max_per_order": "max_per_order IS NULL OR max_per_order >= 1",
            "reserved_non_negative": "quantity_reserved >= 0",
            "not_oversold": "quantity_sold + quantity_reserved <= quantity_total",
            "sold_non_negative": "quantity_sold >= 0",
            "total_non_negative": "quantity_total >= 0",
        },
        indexed=["event_id"],
    )
    columns.table(
        "order_items",
        columns.key("order_id"),
        columns.key("ticket_type_id"),
        columns.number("quantity"),
        checks={"quantity_positive": "quantity >= 1"},
        references={"order_id": "orders", "ticket_type_id": "ticket_types"},
        key=("order_id", "ticket_type_id"),
        indexed=["ticket_type_id"],
    )


def downgrade() -> None:
    columns.drop_table("order_items", "ticket_type_id")
    columns.drop_table("ticket_types", "event_id")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_status_expires_at")
    columns.drop_table("orders", "owner_id", "event_id")
    columns.drop_table("idempotency_records", "created_at")
    columns.drop_table("events", "organizer_id")
