"""foundation: events, ticket inventory, orders, idempotency

Revision ID: 0001
Revises:
Create Date: 2026-11-24 09:01:55.518432
"""

import sqlalchemy as sa
from alembic import op

from headcount.migrations import columns

revision, down_revision = "0001", None
branch_labels = depends_on = None


def upgrade() -> None:
    op.create_table(
        "events",
        columns.key(),
        columns.subject("organizer_id"),
        columns.label(),
        sa.Column("description", sa.Text(), nullable=False),
        columns.moment("starts_at", nullable=True),
        columns.moment("ends_at", nullable=True),
        sa.Column("max_attendees", sa.Integer(), nullable=True),
        sa.Column("virtual_settings", sa.JSON(), nullable=False),
        *columns.stamps(),
        sa.CheckConstraint(
            "max_attendees IS NULL OR max_attendees >= 0", name=op.f("ck_events_max_attendees")
        ),
        columns.primary_key("events"),
    )
    columns.index("events", "organizer_id")

    op.create_table(
        "idempotency_records",
        columns.subject("owner_id"),
        sa.Column("scope", sa.String(length=200), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("response", sa.JSON(), nullable=False),
        columns.moment("created_at"),
        columns.primary_key("idempotency_records", "owner_id", "scope", "key"),
    )
    columns.index("idempotency_records", "created_at")

    op.create_table(
        "orders",
        columns.key(),
        columns.key("event_id"),
        columns.subject("owner_id"),
        sa.Column("status", sa.String(length=20), nullable=False),
        columns.moment("expires_at"),
        *columns.stamps(),
        columns.moment("paid_at", nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'paid', 'cancelled', 'expired', 'refunded')",
            name=op.f("ck_orders_status"),
        ),
        columns.reference("orders", "event_id", "events"),
        columns.primary_key("orders"),
    )
    columns.index("orders", "event_id", "owner_id")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index("ix_orders_status_expires_at", ["status", "expires_at"], unique=False)

    op.create_table(
        "ticket_types",
        columns.key(),
        columns.key("event_id"),
        columns.label(),
        sa.Column("quantity_total", sa.Integer(), nullable=False),
        sa.Column("quantity_sold", sa.Integer(), nullable=False),
        sa.Column("quantity_reserved", sa.Integer(), nullable=False),
        sa.Column("max_per_order", sa.Integer(), nullable=True),
        columns.moment("sales_start", nullable=True),
        columns.moment("sales_end", nullable=True),
        *columns.stamps(),
        sa.CheckConstraint(
            "max_per_order IS NULL OR max_per_order >= 1",
            name=op.f("ck_ticket_types_max_per_order"),
        ),
        sa.CheckConstraint(
            "quantity_reserved >= 0", name=op.f("ck_ticket_types_reserved_non_negative")
        ),
        sa.CheckConstraint(
            "quantity_sold + quantity_reserved <= quantity_total",
            name=op.f("ck_ticket_types_not_oversold"),
        ),
        sa.CheckConstraint("quantity_sold >= 0", name=op.f("ck_ticket_types_sold_non_negative")),
        sa.CheckConstraint("quantity_total >= 0", name=op.f("ck_ticket_types_total_non_negative")),
        columns.reference("ticket_types", "event_id", "events"),
        columns.primary_key("ticket_types"),
    )
    columns.index("ticket_types", "event_id")

    op.create_table(
        "order_items",
        columns.key("order_id"),
        columns.key("ticket_type_id"),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.CheckConstraint("quantity >= 1", name=op.f("ck_order_items_quantity_positive")),
        columns.reference("order_items", "order_id", "orders"),
        columns.reference("order_items", "ticket_type_id", "ticket_types"),
        columns.primary_key("order_items", "order_id", "ticket_type_id"),
    )
    columns.index("order_items", "ticket_type_id")


def downgrade() -> None:
    columns.drop_index("order_items", "ticket_type_id")
    op.drop_table("order_items")
    columns.drop_index("ticket_types", "event_id")
    op.drop_table("ticket_types")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_status_expires_at")
    columns.drop_index("orders", "owner_id", "event_id")
    op.drop_table("orders")
    columns.drop_index("idempotency_records", "created_at")
    op.drop_table("idempotency_records")
    columns.drop_index("events", "organizer_id")
    op.drop_table("events")
