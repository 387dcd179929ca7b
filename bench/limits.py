"""The physical limits Headcount is compared against, measured in the same run.

* PostgreSQL: `pgbench` running the hot-row transaction Headcount runs for a hold — a
  conditional UPDATE of one stock row plus an INSERT of the hold — at the same concurrency.
* SQLite: the same transaction in a tight loop on one connection (WAL, synchronous=NORMAL),
  the embedded default's ceiling.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from pathlib import Path

import psycopg

from bench.machine import figure, tool_output

SCHEMA = """
DROP TABLE IF EXISTS bench_holds;
DROP TABLE IF EXISTS bench_stock;
CREATE TABLE bench_stock (
  id integer PRIMARY KEY,
  total integer NOT NULL,
  sold integer NOT NULL DEFAULT 0,
  reserved integer NOT NULL DEFAULT 0,
  CHECK (sold + reserved <= total)
);
CREATE TABLE bench_holds (
  id bigserial PRIMARY KEY,
  stock_id integer NOT NULL REFERENCES bench_stock(id),
  quantity integer NOT NULL,
  created_at timestamptz NOT NULL
);
"""

HOT_ROW = """\\set b random(1, :buckets)
BEGIN;
UPDATE bench_stock SET reserved = reserved + 1 WHERE id = :b AND total - sold - reserved >= 1;
INSERT INTO bench_holds (stock_id, quantity, created_at) VALUES (:b, 1, now());
COMMIT;
"""


def pgbench_hot_row(dsn: str, *, clients: int, seconds: float, buckets: int = 1) -> float:
    """Transactions per second of the hold transaction on `buckets` stock rows."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(SCHEMA)
        for b in range(1, buckets + 1):
            conn.execute("INSERT INTO bench_stock (id, total) VALUES (%s, 1000000000)", (b,))
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
        script.write(HOT_ROW)
    out = tool_output(
        *("pgbench", "-n", "-c", str(clients), "-j", "2", "-T", str(int(seconds))),
        *("-D", f"buckets={buckets}", "-f", script.name, dsn),
    )
    Path(script.name).unlink()
    return float(figure(r"tps = ([\d.]+)", out))


def sqlite_hot_row(seconds: float) -> float:
    """The same hold transaction in a loop on the embedded database: its ceiling."""
    with tempfile.TemporaryDirectory() as tmp:
        conn = sqlite3.connect(Path(tmp) / "limit.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(
            "CREATE TABLE stock (id INTEGER PRIMARY KEY, total INT, sold INT, reserved INT,"
            " CHECK (sold + reserved <= total))"
        )
        conn.execute(
            "CREATE TABLE holds (id INTEGER PRIMARY KEY, stock_id INT, quantity INT, created_at TEXT)"
        )
        conn.execute("INSERT INTO stock VALUES (1, 1000000000, 0, 0)")
        done = 0
        deadline = time.perf_counter() + seconds
        start = time.perf_counter()
        while time.perf_counter() < deadline:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "UPDATE stock SET reserved = reserved + 1 WHERE id = 1 AND total - sold - reserved >= 1"
            )
            conn.execute(
                "INSERT INTO holds (stock_id, quantity, created_at) VALUES (1, 1, datetime('now'))"
            )
            conn.execute("COMMIT")
            done += 1
        rate = done / (time.perf_counter() - start)
        conn.close()
        return rate
