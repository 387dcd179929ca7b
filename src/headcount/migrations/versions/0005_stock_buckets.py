"""stock buckets: hot-inventory mode for ticket types under extreme demand

* `ticket_types.stock_buckets` (1 = the ordinary single row).
* `ticket_stock_buckets`: the free units of a bucketed ticket type, one row per bucket.
"""

import sqlalchemy as sa
from alembic import op

from headcount.migrations import columns

revision, down_revision = "0005", "0004"


def upgrade() -> None:
    with op.batch_alter_table("ticket_types", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("stock_buckets", sa.Integer(), server_default="1", nullable=False)
        )
        batch_op.create_check_constraint("stock_buckets", "stock_buckets BETWEEN 1 AND 64")
    columns.table(
        "ticket_stock_buckets",
        columns.key("ticket_type_id"),
        columns.number("bucket"),
        columns.number("quantity_free"),
        checks={"free_non_negative": "quantity_free >= 0"},
        references={"ticket_type_id": "ticket_types"},
        key=("ticket_type_id", "bucket"),
    )


def downgrade() -> None:
    op.drop_table("ticket_stock_buckets")
    with op.batch_alter_table("ticket_types", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_ticket_types_stock_buckets"), type_="check")
        batch_op.drop_column("stock_buckets")
