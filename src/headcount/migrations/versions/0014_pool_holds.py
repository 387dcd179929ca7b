"""pool holds: an organizer hold on a capacity pool instead of a ticket type

* `organizer_holds.pool_id`: the pool whose room the hold sets aside (counted in the
  pool's `quantity_used` and the event cap, in no type's stock); `ticket_type_id` may now
  be null, and the CHECK `one_target` keeps exactly one of the two set.
"""

import sqlalchemy as sa
from alembic import op

from headcount.migrations import columns

# Another branch may also add a "0014"; the lead re-chains at merge.
revision, down_revision = "0014", "0013"
branch_labels = depends_on = None

_ONE_TARGET = "(ticket_type_id IS NULL) <> (pool_id IS NULL)"


def upgrade() -> None:
    with op.batch_alter_table("organizer_holds", schema=None) as batch_op:
        batch_op.add_column(columns.key("pool_id", nullable=True))
        batch_op.alter_column("ticket_type_id", existing_type=sa.String(length=80), nullable=True)
        batch_op.create_foreign_key(
            op.f("fk_organizer_holds_pool_id_capacity_pools"), "capacity_pools", ["pool_id"], ["id"]
        )
        batch_op.create_check_constraint("one_target", _ONE_TARGET)
    columns.index("organizer_holds", "pool_id")


def downgrade() -> None:
    # Pool holds cannot be told in the old schema: the downgrade refuses while any exists.
    columns.drop_index("organizer_holds", "pool_id")
    with op.batch_alter_table("organizer_holds", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_organizer_holds_one_target"), type_="check")
        batch_op.drop_constraint(
            op.f("fk_organizer_holds_pool_id_capacity_pools"), type_="foreignkey"
        )
        batch_op.alter_column("ticket_type_id", existing_type=sa.String(length=80), nullable=False)
        batch_op.drop_column("pool_id")
