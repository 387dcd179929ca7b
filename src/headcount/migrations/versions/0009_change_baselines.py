"""change baselines and the event/type index: replay survives retention, audit stays cheap

* `change_baselines`: per counter (`<kind>:<id>:<counter>`, domain/replay.py), what the
  pruned changes added up to. Retention folds what it deletes into it, so baselines plus
  the changes left replay to the ledger's counters (reconcile). Seeded here from the rows
  as they are, so a ledger that ran before anything was recorded replays from its state
  at this revision (the log itself was still empty: nothing recorded changes before).
* `ix_changes_event_id_type_position`: an event's changes of a few types (the audit
  trail, `?type=` filters) without reading its every order. It replaces
  `ix_changes_resource`: the audit trail's resource filter narrows those few rows.
* The readers' indexes (`uq_changes_position`, which replaces the unique constraint,
  and the event ones) become partial, `WHERE position IS NOT NULL`: every index costs
  each change twice (written, then positioned), and a change is written on the order's
  hot path; now only the primary key and the sequencer's index take it there.
"""

import sqlalchemy as sa
from alembic import op

from headcount.migrations import columns

revision, down_revision = "0009", "0008"

# Counter values from the rows that explain them, under replay's keys (`':' || 'held'`:
# a colon before a word would read as a bind parameter).
_SEED = (
    # tickets held by pending orders, sold by paid ones
    """SELECT 'ticket_type:' || i.ticket_type_id || ':' || 'held', t.event_id, SUM(i.quantity)
         FROM order_items i JOIN orders o ON o.id = i.order_id
         JOIN ticket_types t ON t.id = i.ticket_type_id
        WHERE o.status = 'pending' GROUP BY i.ticket_type_id, t.event_id""",
    """SELECT 'ticket_type:' || i.ticket_type_id || ':' || 'sold', t.event_id, SUM(i.quantity)
         FROM order_items i JOIN orders o ON o.id = i.order_id
         JOIN ticket_types t ON t.id = i.ticket_type_id
        WHERE o.status = 'paid' GROUP BY i.ticket_type_id, t.event_id""",
    # tickets held by live waitlist offers
    """SELECT 'ticket_type:' || ticket_type_id || ':' || 'offered', event_id, SUM(offered_quantity)
         FROM waitlist_entries WHERE status = 'offered' AND ticket_type_id IS NOT NULL
        GROUP BY ticket_type_id, event_id""",
    """SELECT 'event:' || event_id || ':' || 'registered', event_id, SUM(party_size)
         FROM registrations WHERE status = 'active' GROUP BY event_id""",
    """SELECT 'session:' || s.id || ':' || 'attendance', s.event_id, COUNT(*)
         FROM session_seats st JOIN sessions s ON s.id = st.session_id
        WHERE st.status = 'confirmed' GROUP BY s.id, s.event_id""",
    """SELECT 'huddle:' || h.id || ':' || 'members', h.event_id, COUNT(*)
         FROM huddle_members m JOIN huddles h ON h.id = m.huddle_id
        GROUP BY h.id, h.event_id""",
)


def upgrade() -> None:
    columns.table(
        "change_baselines",
        columns.string("counter", 200),
        columns.key("event_id"),
        sa.Column("value", sa.BigInteger(), nullable=False),
        key=("counter",),
        indexed=["event_id"],
    )
    partial = columns.where("position IS NOT NULL")
    with op.batch_alter_table("changes", schema=None) as batch_op:
        batch_op.drop_index("ix_changes_resource")
        batch_op.drop_index("ix_changes_event_id_position")
        batch_op.drop_constraint("uq_changes_position", type_="unique")
    with op.batch_alter_table("changes", schema=None) as batch_op:
        batch_op.create_index("uq_changes_position", ["position"], unique=True, **partial)
        batch_op.create_index("ix_changes_event_id_position", ["event_id", "position"], **partial)
        batch_op.create_index(
            "ix_changes_event_id_type_position", ["event_id", "type", "position"], **partial
        )
    for query in _SEED:
        op.execute(f"INSERT INTO change_baselines (counter, event_id, value) {query}")


def downgrade() -> None:
    with op.batch_alter_table("changes", schema=None) as batch_op:
        batch_op.drop_index("ix_changes_event_id_type_position")
        batch_op.drop_index("ix_changes_event_id_position")
        batch_op.drop_index("uq_changes_position")
    with op.batch_alter_table("changes", schema=None) as batch_op:
        batch_op.create_unique_constraint("uq_changes_position", ["position"])
        batch_op.create_index("ix_changes_event_id_position", ["event_id", "position"])
        batch_op.create_index("ix_changes_resource", ["resource_type", "resource_id", "position"])
    columns.drop_table("change_baselines", "event_id")
