"""Which column would distribute each ledger table by event (docs/scale-out.md).

Every admission touches the rows of one event, so an engine that shards by event
(Citus co-location, a CockroachDB/YugabyteDB primary key prefixed by it) can run it on one
node, provided every table says which event a row belongs to and every hot-path write
names it. This module is the list that `tests/unit/test_schema_event_id.py` and
`tests/integration/test_event_scoped_writes.py` hold the schema and the statements to.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Table

EVENT_COLUMN = "event_id"

# Tables whose `event_id` is a copy of their parent's: (parent id column, parent table).
# Revision 0010 backfilled them; the copy must always equal the parent's.
COPIED: Mapping[str, tuple[str, str]] = {
    "order_items": ("order_id", "orders"),
    "ticket_stock_buckets": ("ticket_type_id", "ticket_types"),
    "ticket_type_pools": ("ticket_type_id", "ticket_types"),
    "session_capacity": ("session_id", "sessions"),
    "session_seats": ("session_id", "sessions"),
    "huddle_members": ("huddle_id", "huddles"),
}

# A table whose own key is the event.
_KEYED_BY_EVENT: Mapping[str, str] = {"events": "id"}

# Tables that belong to no one event, and why; under Citus, reference tables (copied to
# every node) or tables kept on the coordinator. No admission writes them except
# `idempotency_records`, whose cost is said in docs/scale-out.md.
REFERENCE_TABLES: Mapping[str, str] = {
    "webhook_endpoints": (
        "an organizer's (or the platform's) subscriptions, scoped to many events or all of "
        "them; small, read by every fan-out run: a reference table"
    ),
    "change_log_state": (
        "one row: the sequencer's mutex and the log's global high-water mark; positions "
        "order all events' changes, so it is one row on the coordinator"
    ),
    "idempotency_records": (
        "keyed by the caller (owner, scope, key) before the request is read, and some "
        "requests name no event (/orders/{id}/confirm); distributed by owner_id, it is a "
        "second shard in the keyed transaction"
    ),
}


def event_column(table: Table) -> str | None:
    """The column naming a row's event in `table`, or None for a reference table."""
    if table.name in REFERENCE_TABLES:
        return None
    return _KEYED_BY_EVENT.get(table.name, EVENT_COLUMN)
