"""pools: shared quotas across ticket types, event-wide ticket counter, buyer limits

* `capacity_pools` and `ticket_type_pools` (many-to-many).
* `ticket_types`: `min_per_order`, `max_per_customer`, and `quantity_over` — the overhang
  left when a total is lowered below what is sold and held; the oversell CHECK becomes
  `sold + reserved <= total + over`, still a real last line of defence.
* `event_capacity.tickets`: tickets held or sold, counted against `max_attendees` with
  registrations. Capped events get their counter row now, recounted from the rows.
"""

import sqlalchemy as sa
from alembic import op

from headcount.migrations import columns

revision, down_revision = "0004", "0003"

_OVERSOLD_OLD = "quantity_sold + quantity_reserved <= quantity_total"
_OVERSOLD_NEW = "quantity_sold + quantity_reserved <= quantity_total + quantity_over"

# Tickets held or sold per capped event: pending and paid order items plus live offers.
_RECOUNT = """
UPDATE event_capacity SET tickets = (
    SELECT COALESCE(SUM(i.quantity), 0)
      FROM order_items i
      JOIN orders o ON o.id = i.order_id
      JOIN ticket_types t ON t.id = i.ticket_type_id
     WHERE t.event_id = event_capacity.event_id AND o.status IN ('pending', 'paid')
) + (
    SELECT COALESCE(SUM(w.offered_quantity), 0)
      FROM waitlist_entries w
      JOIN ticket_types t ON t.id = w.ticket_type_id
     WHERE t.event_id = event_capacity.event_id AND w.status = 'offered'
)
WHERE event_id IN (SELECT id FROM events WHERE max_attendees IS NOT NULL)
"""


def upgrade() -> None:
    columns.owned(
        "capacity_pools",
        columns.label(),
        columns.number("capacity", nullable=True),
        sa.Column("overbook_ratio", sa.Float(), nullable=False),
        columns.number("admission_limit", nullable=True),
        columns.number("max_per_customer", nullable=True),
        columns.number("quantity_used"),
        columns.number("quantity_over"),
        *columns.stamps(),
        checks={
            "capacity_non_negative": "capacity IS NULL OR capacity >= 0",
            "overbook_non_negative": "overbook_ratio >= 0",
            "limit_iff_capacity": "(capacity IS NULL) = (admission_limit IS NULL)",
            "limit_covers_capacity": "admission_limit IS NULL OR admission_limit >= capacity",
            "max_per_customer": "max_per_customer IS NULL OR max_per_customer >= 1",
            "used_non_negative": "quantity_used >= 0",
            "over_non_negative": "quantity_over >= 0",
            "not_overdrawn": "admission_limit IS NULL OR quantity_used <= admission_limit + quantity_over",
        },
        indexed=["event_id"],
    )
    columns.table(
        "ticket_type_pools",
        columns.key("ticket_type_id"),
        columns.key("pool_id"),
        references={"pool_id": "capacity_pools", "ticket_type_id": "ticket_types"},
        key=("ticket_type_id", "pool_id"),
        indexed=["pool_id"],
    )

    with op.batch_alter_table("ticket_types", schema=None) as batch_op:
        batch_op.add_column(columns.number("min_per_order", nullable=True))
        batch_op.add_column(columns.number("max_per_customer", nullable=True))
        batch_op.add_column(
            sa.Column("quantity_over", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.drop_constraint(op.f("ck_ticket_types_not_oversold"), type_="check")
        batch_op.create_check_constraint("not_oversold", _OVERSOLD_NEW)
        batch_op.create_check_constraint("over_non_negative", "quantity_over >= 0")
        batch_op.create_check_constraint(
            "min_per_order", "min_per_order IS NULL OR min_per_order >= 1"
        )
        batch_op.create_check_constraint(
            "max_per_customer", "max_per_customer IS NULL OR max_per_customer >= 1"
        )

    with op.batch_alter_table("event_capacity", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tickets", sa.Integer(), nullable=False, server_default="0"))
        batch_op.create_check_constraint("tickets_non_negative", "tickets >= 0")

    op.execute(
        "INSERT INTO event_capacity (event_id, registered, tickets) "
        "SELECT id, 0, 0 FROM events WHERE max_attendees IS NOT NULL "
        "AND id NOT IN (SELECT event_id FROM event_capacity)"
    )
    op.execute(_RECOUNT)


def downgrade() -> None:
    with op.batch_alter_table("event_capacity", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_event_capacity_tickets_non_negative"), type_="check")
        batch_op.drop_column("tickets")
    with op.batch_alter_table("ticket_types", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_ticket_types_max_per_customer"), type_="check")
        batch_op.drop_constraint(op.f("ck_ticket_types_min_per_order"), type_="check")
        batch_op.drop_constraint(op.f("ck_ticket_types_over_non_negative"), type_="check")
        batch_op.drop_constraint(op.f("ck_ticket_types_not_oversold"), type_="check")
        batch_op.create_check_constraint("not_oversold", _OVERSOLD_OLD)
        batch_op.drop_column("quantity_over")
        batch_op.drop_column("max_per_customer")
        batch_op.drop_column("min_per_order")
    columns.drop_table("ticket_type_pools", "pool_id")
    columns.drop_table("capacity_pools", "event_id")
