"""Stock freed in one process, heard in every other: PostgreSQL NOTIFY/LISTEN.

A process answers "sold out" from memory for a bounded moment after a read found no room
(capacity/soldout.py). A release it commits itself ends its mark at once; a release
committed by another process used to reach it only when the mark's TTL ran out. With
PostgreSQL, every unit of work that frees stock (ledger/db.stock_freed) sends a
notification on `CHANNEL` as part of the transaction, which PostgreSQL delivers only if
and when it commits, and each process listens on a connection of its own.

The TTL stays the bound: a notification can be missed (the listening connection drops, or
the URL goes through a transaction-mode pooler, where LISTEN cannot work and the listener
is not started). On every (re)connect the listener reports "anything may be free", since
it cannot know what it missed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Iterable

import asyncpg  # type: ignore[import-untyped]  # no stubs
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncSession

from headcount.ledger.urls import plain, pooled

log = logging.getLogger(__name__)

CHANNEL = "headcount_stock_freed"
ANY = "*"
# NOTIFY payloads must stay under 8,000 bytes: a longer list is sent as "any".
_MAX_PAYLOAD = 7_000
_NOTIFY = text("SELECT pg_notify(:channel, :payload)")
# How long to wait before listening again after the connection was lost.
RECONNECT_AFTER = 1.0

Heard = Callable[[Iterable[str] | None], None]


async def announce(tx: AsyncSession, ticket_type_ids: Collection[str] | None) -> None:
    """Tell every listening process, when `tx` commits, that stock on these types (None:
    any) may be free again."""
    payload = ANY if ticket_type_ids is None else ",".join(sorted(ticket_type_ids))
    if len(payload) > _MAX_PAYLOAD:
        payload = ANY
    await tx.execute(_NOTIFY, {"channel": CHANNEL, "payload": payload})


def possible(url: str) -> bool:
    """Whether processes on this database URL can hear each other: PostgreSQL reached
    directly (a transaction-mode pooler cannot keep a LISTEN)."""
    return make_url(url).get_backend_name() == "postgresql" and not pooled(url)


def parse(payload: str) -> list[str] | None:
    """The ticket types a notification names (None: any)."""
    if payload == ANY or not payload:
        return None
    return payload.split(",")


async def listen(url: str, heard: Heard, *, connect_timeout: float = 5.0) -> None:
    """Call `heard` for every notification, until cancelled; reconnect when the connection
    is lost (and report "any" after each connect: what was said meanwhile is unknown)."""
    dsn = make_url(plain(url)).set(drivername="postgresql").render_as_string(hide_password=False)
    while True:
        try:
            conn = await asyncpg.connect(dsn, timeout=connect_timeout)
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            log.warning("stock news: cannot listen (%s); marks end by their TTL", exc)
            await asyncio.sleep(RECONNECT_AFTER)
            continue
        try:
            await _hear_until_lost(conn, heard)
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("stock news: %s", exc)
        finally:
            if not conn.is_closed():
                await conn.close(timeout=1)
        await asyncio.sleep(RECONNECT_AFTER)


async def _hear_until_lost(conn: asyncpg.Connection, heard: Heard) -> None:
    lost = asyncio.Event()
    conn.add_termination_listener(lambda _: lost.set())
    await conn.add_listener(CHANNEL, lambda *args: heard(parse(args[-1])))
    heard(None)
    await lost.wait()
    log.warning("stock news: connection lost; listening again")
