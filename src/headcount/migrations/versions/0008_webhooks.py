"""webhooks: endpoints with their fan-out cursor, and the delivery log

* `webhook_endpoints`: where an organizer's changes go (scope, type filter, secret),
  its fan-out cursor `fanned_through` and its health (ledger/webhooks.py).
* `webhook_deliveries`: one row per (endpoint, change), carrying the exact body it sends,
  its status, attempts, lease and last response.
"""

import sqlalchemy as sa
from alembic import op

from headcount.migrations import columns

revision, down_revision = "0008", "0007"


def upgrade() -> None:
    columns.table(
        "webhook_endpoints",
        columns.key(),
        columns.string("organizer_id", 200, nullable=True),
        columns.document("event_ids", nullable=True),
        columns.document("types"),
        columns.string("url", 2000),
        columns.string("description", 500),
        columns.string("secret", 200),
        columns.string("previous_secret", 200, nullable=True),
        columns.moment("previous_secret_until", nullable=True),
        columns.flag("enabled"),
        columns.string("disabled_reason", 300, nullable=True),
        columns.moment("disabled_at", nullable=True),
        sa.Column("fanned_through", sa.BigInteger(), nullable=False),
        columns.moment("failing_since", nullable=True),
        columns.number("failures_in_a_row"),
        columns.moment("last_success_at", nullable=True),
        columns.subject("created_by"),
        *columns.stamps(),
        indexed=["organizer_id"],
    )
    columns.table(
        "webhook_deliveries",
        columns.key(),
        columns.key("endpoint_id"),
        columns.key("event_id"),
        sa.Column("position", sa.BigInteger(), nullable=False),
        columns.string("type", 60),
        columns.text("body"),
        columns.state(),
        columns.number("attempts"),
        columns.moment("next_attempt_at"),
        columns.moment("retrying_since"),
        columns.moment("leased_until", nullable=True),
        columns.string("lease_token", 40, nullable=True),
        columns.string("leased_by", 200, nullable=True),
        columns.moment("last_attempt_at", nullable=True),
        columns.number("last_status_code", nullable=True),
        columns.string("last_error", 500, nullable=True),
        columns.string("last_response", 1000, nullable=True),
        columns.moment("created_at"),
        columns.moment("delivered_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoints.id"],
            name=op.f("fk_webhook_deliveries_endpoint_id_webhook_endpoints"),
            ondelete="CASCADE",
        ),
        unique={"uq_webhook_deliveries_endpoint_id": ("endpoint_id", "position")},
    )
    pending = columns.where("status = 'pending'")
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_webhook_deliveries_pending",
            ["endpoint_id", "event_id", "position"],
            **pending,
        )
        batch_op.create_index("ix_webhook_deliveries_due", ["next_attempt_at"], **pending)
        batch_op.create_index(
            "ix_webhook_deliveries_endpoint_status", ["endpoint_id", "status", "position"]
        )


def downgrade() -> None:
    op.drop_table("webhook_deliveries")
    columns.drop_table("webhook_endpoints", "organizer_id")
