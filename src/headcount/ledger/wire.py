"""What rides on PostgreSQL's wire besides our statements: timeouts set at every BEGIN.

`statement_timeout` and `lock_timeout` bound how long a statement may run or wait for a
lock, so a lock held elsewhere becomes a quick 503 `timeout` instead of a hang. They used
to be startup parameters of each connection. A transaction pooler (PgBouncer in
`pool_mode = transaction`) refuses unknown startup parameters and, worse, hands each
transaction a server connection that other clients used before, so a session setting
cannot be relied on. `SET LOCAL` lasts exactly one transaction, which is also exactly how
long a pooler lends a server connection: every transaction sets its own.

asyncpg starts a transaction with one simple-protocol `BEGIN …;` message (its
`Transaction.start`), which may carry several statements: the two `SET LOCAL`s join it,
so the timeouts cost no round trip of their own.
"""

from __future__ import annotations

from typing import Any

import asyncpg  # type: ignore[import-untyped]  # no stubs


def timed_connection(timeout_ms: int) -> type[asyncpg.Connection]:
    """An asyncpg connection class whose every BEGIN sets both timeouts for the transaction."""
    ms = int(timeout_ms)
    suffix = f" SET LOCAL statement_timeout = {ms}; SET LOCAL lock_timeout = {ms};"

    class TimedConnection(asyncpg.Connection):  # type: ignore[misc]  # asyncpg is untyped
        async def execute(
            self,
            query: str,
            *args: Any,
            timeout: float | None = None,  # noqa: ASYNC109 - asyncpg's own signature
        ) -> str:
            if not args and query.startswith("BEGIN"):
                query = f"{query.rstrip().rstrip(';')};{suffix}"
            result: str = await super().execute(query, *args, timeout=timeout)
            return result

    return TimedConnection
