"""Per-user quotas: one client must not be able to hold a whole stock.

A buyer may have at most `HEADCOUNT_MAX_PENDING_ORDERS_PER_USER` live holds (pending
orders not yet lapsed) at once. Counting and then inserting is a read-then-write, so the
count is taken under a lock that every order creation by the same user queues on:

* **PostgreSQL:** a transaction-scoped advisory lock keyed by the user (`locks.user`,
  step 1 of the lock order in `ledger/locks.py`). Two concurrent orders by one user
  serialise here; orders by different users never wait on each other (a hash collision
  only makes two users queue, it never admits anyone wrongly). The lock is released at
  commit or rollback, and it is taken *before* any ticket-type row lock and by no other
  path, so it cannot form a cycle with the ledger's lock order (docs/concurrency.md).
* **SQLite:** `BEGIN IMMEDIATE` already serialises every writer, so the count and the
  insert that follows it in the same transaction cannot interleave with another's.

The count is folded into the order's own INSERT (`insert_pending_order`: INSERT … SELECT …
WHERE count < quota), one statement after the one that took the lock, so it still sees
every order the user committed before.

No counter is kept: the quota is recomputed from the order rows, so it cannot drift and
needs no reconcile check. Lapsed holds (pending but past `expires_at`) hold nothing and
do not count.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Integer, String, bindparam, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from headcount.domain.errors import RateLimited
from headcount.domain.tickets import OrderStatus
from headcount.ledger import locks
from headcount.ledger.models import Order

# Built once: the order path runs this on every order (bench/RESULTS.md).
_LIVE_HOLDS = (
    select(func.count())
    .select_from(Order)
    .where(
        Order.owner_id == bindparam("owner", type_=String),
        Order.status == OrderStatus.PENDING.value,
        Order.expires_at > bindparam("now", type_=DateTime(timezone=True)),
    )
)


async def live_holds(tx: AsyncSession, owner_id: str, now: datetime) -> int:
    count = await tx.scalar(_LIVE_HOLDS, {"owner": owner_id, "now": now})
    return int(count or 0)


_ORDER_COLUMNS = ("id", "event_id", "owner_id", "status", "expires_at", "created_at", "updated_at")
_TIMESTAMP = DateTime(timezone=True)
_ORDER_TYPES = {"expires_at": _TIMESTAMP, "created_at": _TIMESTAMP, "updated_at": _TIMESTAMP}
_INSERT_ORDER = INSERT_ORDER = insert(Order.__table__)  # type: ignore[arg-type]
# The count and the insert in one statement: it runs after the per-user lock was taken by
# an earlier statement, so its snapshot sees every order that user committed before.
_INSERT_ORDER_WITHIN_QUOTA = _INSERT_ORDER.from_select(
    list(_ORDER_COLUMNS),
    select(*(bindparam(c, type_=_ORDER_TYPES.get(c, String)) for c in _ORDER_COLUMNS)).where(
        _LIVE_HOLDS.scalar_subquery() < bindparam("quota", type_=Integer)
    ),
)


async def insert_pending_order(
    tx: AsyncSession, row: dict[str, Any], *, limit: int, locked: bool = False
) -> None:
    """Insert a pending order unless its owner already holds `limit` live ones (0: no limit).

    Raises `RateLimited` having inserted nothing. `row` holds the order's columns;
    `locked`: the caller already holds the per-user lock (taken in an earlier statement).
    """
    if limit <= 0:
        await tx.execute(_INSERT_ORDER, row)
        return
    if not locked:
        await locks.user(tx, row["owner_id"])
    params = {c: row[c] for c in _ORDER_COLUMNS}
    params.update(owner=row["owner_id"], now=row["created_at"], quota=limit)
    inserted = await tx.execute(_INSERT_ORDER_WITHIN_QUOTA, params)
    if inserted.rowcount != 1:  # type: ignore[attr-defined]
        held = await live_holds(tx, row["owner_id"], row["created_at"])
        raise _refusal(max(held, limit), limit)


async def live_holds_of(
    tx: AsyncSession, owner_ids: Sequence[str], now: datetime
) -> dict[str, int]:
    """Live holds per buyer, for a batch holding all their locks (`locks.users`)."""
    found = await tx.execute(
        select(Order.owner_id, func.count())
        .where(
            Order.owner_id.in_(sorted(set(owner_ids))),
            Order.status == OrderStatus.PENDING.value,
            Order.expires_at > now,
        )
        .group_by(Order.owner_id)
    )
    return {owner: int(n) for owner, n in found.all()}


def refusal(held: int, limit: int) -> RateLimited:
    """The hold limit's refusal (a batch decides it itself, `live_holds_of`)."""
    return _refusal(held, limit)


def _refusal(held: int, limit: int) -> RateLimited:
    return RateLimited(
        f"you already hold {held} pending orders (the limit is {limit}); "
        "pay for or cancel one first, or wait for a hold to lapse",
        max_pending_orders=limit,
    )
