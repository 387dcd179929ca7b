"""Every ledger table says which event a row belongs to, or is declared global, with why.

The schema half of "distribution by event needs no rewrite" (docs/scale-out.md); the
statements half is tests/integration/test_event_scoped_writes.py.
"""

from __future__ import annotations

from headcount.ledger.distribution import REFERENCE_TABLES, event_column
from headcount.ledger.schema import metadata


def test_every_table_has_its_event_column_or_is_a_declared_reference_table() -> None:
    missing = [
        table.name
        for table in metadata.sorted_tables
        if (column := event_column(table)) is not None
        and (column not in table.c or table.c[column].nullable)
    ]
    assert missing == [], f"no NOT NULL event column (or a declared reason): {missing}"


def test_reference_tables_exist_and_say_why() -> None:
    assert set(REFERENCE_TABLES) <= set(metadata.tables), "a declared table that does not exist"
    for name, reason in REFERENCE_TABLES.items():
        assert len(reason) > 40, name


def test_an_event_column_is_the_events_key_type() -> None:
    """Same type as `events.id`, so co-located joins compare like with like."""
    key = metadata.tables["events"].c.id.type
    for table in metadata.sorted_tables:
        column = event_column(table)
        if column is not None:
            found = table.c[column].type
            assert (type(found), getattr(found, "length", None)) == (
                type(key),
                getattr(key, "length", None),
            ), table.name
