"""Revision 0010 copies each child row's event from its parent, on both backends.

A ledger migrated before 0010 has rows in the six tables that gain `event_id`; the
upgrade must give every one its parent's event (two events, so a copy from the wrong
parent shows), and the downgrade must take the column away again.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from alembic import command
from sqlalchemy import Engine, column, create_engine, inspect, select, table
from sqlalchemy.engine import make_url

from headcount.ledger.distribution import COPIED
from headcount.ledger.migrate import alembic_config, upgrade

NOW = datetime(2026, 1, 1, tzinfo=UTC)
# The prefix of the parent ids `_rows_of` writes, per parent table.
PREFIX = {"orders": "ord", "ticket_types": "tt", "sessions": "ses", "huddles": "hud"}
EVENTS = ("evt_a", "evt_b")


def _rows_of(e: str) -> list[tuple[str, dict[str, Any]]]:
    """One event's rows as revision 0009 had them (no `event_id` on the six tables)."""
    stamps = {"created_at": NOW, "updated_at": NOW}
    return [
        ("events", {"id": e, "organizer_id": "org", "name": "E", "description": "",
                    "virtual_settings": "{}", **stamps}),
        ("ticket_types", {"id": f"tt_{e}", "event_id": e, "name": "T", "quantity_total": 10,
                          "quantity_sold": 0, "quantity_reserved": 1, **stamps}),
        ("orders", {"id": f"ord_{e}", "event_id": e, "owner_id": "u", "status": "pending",
                    "expires_at": NOW, **stamps}),
        ("order_items", {"order_id": f"ord_{e}", "ticket_type_id": f"tt_{e}", "quantity": 1}),
        ("ticket_stock_buckets", {"ticket_type_id": f"tt_{e}", "bucket": 0, "quantity_free": 9}),
        ("capacity_pools", {"id": f"pool_{e}", "event_id": e, "name": "P", "overbook_ratio": 0,
                            "quantity_used": 0, "quantity_over": 0, **stamps}),
        ("ticket_type_pools", {"ticket_type_id": f"tt_{e}", "pool_id": f"pool_{e}"}),
        ("sessions", {"id": f"ses_{e}", "event_id": e, "title": "S", "description": "",
                      "waitlist_enabled": True, **stamps}),
        ("session_capacity", {"session_id": f"ses_{e}", "maximum_capacity": 5,
                              "current_attendance": 1}),
        ("session_seats", {"session_id": f"ses_{e}", "attendee_id": "u", "status": "confirmed",
                           "via": "rsvp", "confirmed_at": NOW, "updated_at": NOW}),
        ("huddles", {"id": f"hud_{e}", "event_id": e, "name": "H", "topic": "", "capacity": 4,
                     "members": 1, "version": 1, **stamps}),
        ("huddle_members", {"huddle_id": f"hud_{e}", "user_id": "u", "joined_at": NOW}),
    ]  # fmt: skip


def _engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return create_engine(parsed)


def test_upgrade_copies_each_rows_event_from_its_parent(own_database: str) -> None:
    command.downgrade(alembic_config(own_database), "0009")
    engine = _engine(own_database)
    try:
        assert all(
            "event_id" not in {c["name"] for c in inspect(engine).get_columns(name)}
            for name in COPIED
        )
        with engine.begin() as conn:
            for event in EVENTS:
                for name, row in _rows_of(event):
                    conn.execute(table(name, *(column(c) for c in row)).insert().values(**row))
        upgrade(own_database)
        with engine.connect() as conn:
            for name, (parent_id, parent) in COPIED.items():
                child = table(name, column(parent_id), column("event_id"))
                rows = conn.execute(select(child.c[parent_id], child.c.event_id)).all()
                expected = [(f"{PREFIX[parent]}_{e}", e) for e in EVENTS]
                assert sorted(tuple(r) for r in rows) == expected, name
        inspector = inspect(engine)
        for name in COPIED:
            found = next(c for c in inspector.get_columns(name) if c["name"] == "event_id")
            assert found["nullable"] is False, name
    finally:
        engine.dispose()
