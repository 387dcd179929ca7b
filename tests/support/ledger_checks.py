"""Exact invariant checks straight from the database, independent of the service's own reads."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, create_engine, text

from headcount.ledger.reconcile import reconcile
from headcount.ledger.urls import async_url
from headcount.runtime import Runtime
from support.servers import server_env


def sync_url(database_url: str) -> str:
    url = async_url(database_url)
    driver = "sqlite" if url.get_backend_name() == "sqlite" else "postgresql+psycopg"
    return url.set(drivername=driver).render_as_string(hide_password=False)


@contextmanager
def direct_connection(database_url: str) -> Iterator[Connection]:
    """A connection of its own, outside every pool the service and the test runtime keep,
    so what it reads is what committed; disposed afterwards."""
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def ticket_rows(database_url: str, ticket_type_id: str) -> dict[str, int]:
    """Counters and the sums of the order rows that should explain them."""
    with direct_connection(database_url) as conn:
        row = conn.execute(
            text(
                """
                SELECT t.quantity_total, t.quantity_sold, t.quantity_reserved,
                  COALESCE(SUM(CASE WHEN o.status = 'pending' THEN i.quantity END), 0),
                  COALESCE(SUM(CASE WHEN o.status = 'paid' THEN i.quantity END), 0),
                  (SELECT COALESCE(SUM(b.quantity_free), 0) FROM ticket_stock_buckets b
                    WHERE b.ticket_type_id = t.id),
                  t.stock_buckets
                FROM ticket_types t
                LEFT JOIN order_items i ON i.ticket_type_id = t.id
                LEFT JOIN orders o ON o.id = i.order_id
                WHERE t.id = :id
                GROUP BY t.id, t.quantity_total, t.quantity_sold, t.quantity_reserved,
                  t.stock_buckets
                """
            ),
            {"id": ticket_type_id},
        ).one()
    total, sold, reserved, held_rows, paid_rows, free, stock_buckets = (int(v) for v in row)
    return {
        "total": total,
        "sold": sold,
        "reserved": reserved,
        "held_rows": held_rows,
        "paid_rows": paid_rows,
        "bucket_free": free,
        "stock_buckets": stock_buckets,
    }


def run_reconcile(database_url: str) -> subprocess.CompletedProcess[str]:
    """The real `headcount reconcile` command, as an operator would run it."""
    return subprocess.run(
        [sys.executable, "-m", "headcount", "reconcile"],
        env=server_env(database_url),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def assert_no_drift(rt: Runtime) -> None:
    """Every counter still equals what its rows and the change log explain (`reconcile`,
    read-only), in the test's own runtime."""
    async with rt.db.transaction() as tx:
        assert [str(d) for d in await reconcile(tx)] == []
