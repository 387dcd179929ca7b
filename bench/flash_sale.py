"""Flash sale over HTTP: many buyers, one ticket type, two server processes.

wrk (C, so the load generator leaves the cores to the servers) sends one-ticket orders from
thousands of distinct buyers at a fixed number of connections. Afterwards the database
itself is asked how many holds exist and whether anything was oversold.
"""

from __future__ import annotations

import re
import sqlite3
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench.machine import figure, tool_output
from headcount.config import Settings
from headcount.domain.identity import Role
from headcount.tokens import mint

LUA = Path(__file__).parent / "lua" / "order.lua"
BUYERS = 4000


@dataclass(frozen=True)
class SaleResult:
    attempts_per_s: float
    successes: int
    successes_per_s: float
    p50_ms: float
    p99_ms: float
    oversold: int
    errors: int


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    found = re.match(r"([\d.]+)(us|ms|s|m)", text)
    if not found:
        raise ValueError(text)
    return float(found.group(1)) * _UNITS[found.group(2)]


def _tokens(count: int) -> list[str]:
    settings = Settings()
    return [mint(settings, f"bench-buyer-{i}", Role.ATTENDEE) for i in range(count)]


_TOKENS: list[str] = []


def setup_stock(base: str, stock: int, stock_buckets: int = 1) -> tuple[str, str]:
    organizer = {"Authorization": f"Bearer {mint(Settings(), 'bench-org', Role.ORGANIZER)}"}
    event = httpx.post(f"{base}/api/v1/events", json={"name": "Bench"}, headers=organizer).json()
    tt = httpx.post(
        f"{base}/api/v1/events/{event['id']}/ticket-types",
        json={"name": "Hot", "quantity_total": stock, "stock_buckets": stock_buckets},
        headers=organizer,
    ).json()
    return event["id"], tt["id"]


def run_wrk(
    base: str, event_id: str, tt_id: str, *, connections: int, seconds: float
) -> tuple[float, float, float, int]:
    if not _TOKENS:
        _TOKENS.extend(_tokens(BUYERS))
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(f'EVENT_ID = "{event_id}"\nTICKET_TYPE_ID = "{tt_id}"\nTOKENS = {{\n')
        script.write(",\n".join(f'"{t}"' for t in _TOKENS))
        script.write("\n}\n")
        script.write(LUA.read_text())
    out = tool_output(
        *("wrk", "-t2", f"-c{connections}", f"-d{int(seconds)}s", "--latency"),
        *("--timeout", "30s", "-s", script.name, base),
    )
    Path(script.name).unlink()
    rps = float(figure(r"Requests/sec:\s+([\d.]+)", out))
    p50 = _ms(figure(r"^\s+50%\s+(\S+)", out, flags=re.M))
    p99 = _ms(figure(r"^\s+99%\s+(\S+)", out, flags=re.M))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    socket_errors = sum(int(g) for g in errors.groups()) if errors else 0
    return rps, p50, p99, socket_errors


def http_floor(base: str, *, connections: int, seconds: float) -> float:
    """Requests/s of `GET /healthz` (no auth, no database): the HTTP stack's own ceiling
    on this machine, against which any endpoint's rate can be read."""
    out = tool_output("wrk", "-t2", f"-c{connections}", f"-d{int(seconds)}s", f"{base}/healthz")
    return float(figure(r"Requests/sec:\s+([\d.]+)", out))


def _row(found: tuple[Any, ...] | None) -> tuple[Any, ...]:
    """An aggregate's one row (there is always one unless the ticket type is gone)."""
    if found is None:
        raise RuntimeError("the ticket type under test is not in the database")
    return found


def _parse_time(value: object) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def ledger_outcome(database_url: str, tt_id: str) -> tuple[int, float, int]:
    """(successful holds, their rate between first and last, oversold units) from the DB."""
    counters = (
        "SELECT quantity_total, quantity_sold, quantity_reserved FROM ticket_types WHERE id = {p}"
    )
    holds = (
        "SELECT count(*), min(o.created_at), max(o.created_at), coalesce(sum(i.quantity), 0) "
        "FROM order_items i JOIN orders o ON o.id = i.order_id WHERE i.ticket_type_id = {p}"
    )
    if database_url.startswith("sqlite"):
        conn = sqlite3.connect(database_url.removeprefix("sqlite:///"))
        total, sold, reserved = conn.execute(counters.format(p="?"), (tt_id,)).fetchone()
        count, first, last, units = conn.execute(holds.format(p="?"), (tt_id,)).fetchone()
        conn.close()
    else:
        with psycopg.connect(database_url) as pg:
            total, sold, reserved = _row(pg.execute(counters.format(p="%s"), (tt_id,)).fetchone())
            count, first, last, units = _row(pg.execute(holds.format(p="%s"), (tt_id,)).fetchone())
    oversold = max(0, sold + reserved - total, units - total)
    if count < 2:
        return count, 0.0, oversold
    span = (_parse_time(last) - _parse_time(first)).total_seconds()
    return count, (count - 1) / span if span > 0 else 0.0, oversold


def flash_sale(
    base: str,
    database_url: str,
    *,
    stock: int,
    connections: int,
    seconds: float,
    stock_buckets: int = 1,
) -> SaleResult:
    event_id, tt_id = setup_stock(base, stock, stock_buckets)
    rps, p50, p99, errors = run_wrk(base, event_id, tt_id, connections=connections, seconds=seconds)
    successes, rate, oversold = ledger_outcome(database_url, tt_id)
    return SaleResult(rps, successes, rate, p50, p99, oversold, errors)
