"""membership version and the buyer's hold index: the order path's hot statements

* `ticket_types.membership_version`, bumped by every pool attach or detach in the same
  transaction that changes the membership (ledger/draws.py). An order compares the value
  its stock UPDATE returns with the one it read before locking (ledger/basket.py).
* `ix_orders_owner_id_status_expires_at` replaces `ix_orders_owner_id`: the per-user quota
  count runs on every order and must find one buyer's live holds without visiting every
  pending hold (ledger/quotas.py).
"""

import sqlalchemy as sa
from alembic import op

revision, down_revision = "0006", "0005"


def upgrade() -> None:
    with op.batch_alter_table("ticket_types", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("membership_version", sa.Integer(), server_default="0", nullable=False)
        )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index(
            "ix_orders_owner_id_status_expires_at",
            ["owner_id", "status", "expires_at"],
            unique=False,
        )
        batch_op.drop_index("ix_orders_owner_id")


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index("ix_orders_owner_id", ["owner_id"], unique=False)
        batch_op.drop_index("ix_orders_owner_id_status_expires_at")
    with op.batch_alter_table("ticket_types", schema=None) as batch_op:
        batch_op.drop_column("membership_version")
