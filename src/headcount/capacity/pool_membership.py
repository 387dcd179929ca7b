"""Which pools a ticket type draws on: attach and detach, keeping pool counters exact.

Shared by `capacity/tickets.py` (the `pool_ids` field) and `capacity/pools.py` (the attach
and detach endpoints). Lock order as everywhere (docs/concurrency.md, "Pools"): the ticket
type's row first, then pool rows in ascending id.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from headcount.domain.errors import InvalidRequest, NotFound
from headcount.domain.ids import is_well_formed
from headcount.ledger import draws
from headcount.ledger.models import TicketType
from headcount.ledger.pools import CapacityPool, TicketTypePool


async def load_pool(tx: AsyncSession, pool_id: str) -> CapacityPool:
    if not is_well_formed(pool_id):
        raise NotFound(f"no pool {pool_id!r}")
    pool = await tx.get(CapacityPool, pool_id, populate_existing=True)
    if pool is None:
        raise NotFound(f"no pool {pool_id!r}")
    return pool


async def set_pools(
    tx: AsyncSession, tt: TicketType, pool_ids: Sequence[str], now: datetime
) -> bool:
    """Make `pool_ids` exactly the pools `tt` draws on; returns whether anything changed."""
    wanted = set(pool_ids)
    for pool_id in sorted(wanted):
        pool = await load_pool(tx, pool_id)
        if pool.event_id != tt.event_id:
            raise InvalidRequest(
                f"pool {pool_id} belongs to another event than ticket type {tt.id}",
                pool_id=pool_id,
                ticket_type_id=tt.id,
            )
    # The type and every queued type of its event: the caller settles them afterwards, and
    # no ticket-type row may be locked after the pool rows moved below.
    await draws.lock_for_membership(tx, await draws.waitlisted_neighbours(tx, [tt.id]))
    current = set(
        await tx.scalars(
            select(TicketTypePool.pool_id).where(TicketTypePool.ticket_type_id == tt.id)
        )
    )
    changed = False
    for pool_id in sorted(wanted ^ current):
        if pool_id in wanted:
            changed |= await draws.attach(tx, tt.id, pool_id)
        else:
            changed |= await draws.detach(tx, tt.id, pool_id)
    if changed:
        await tx.execute(
            update(TicketType)
            .where(TicketType.id == tt.id)
            .values(updated_at=now)
            .execution_options(synchronize_session=False)
        )
    return changed
