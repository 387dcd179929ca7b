"""Which pools a ticket type draws on: attach and detach, keeping pool counters exact.

Shared by `capacity/tickets.py` (the `pool_ids` field) and `capacity/pools.py` (the attach
and detach endpoints). Lock order as everywhere (ledger/locks.py): the ticket type's row
first, then pool rows in ascending id.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from headcount.domain.errors import InvalidRequest
from headcount.ledger import draws, locks, rows
from headcount.ledger.db import Tx
from headcount.ledger.models import TicketType
from headcount.ledger.pools import CapacityPool


async def load_pool(tx: Tx, pool_id: str) -> CapacityPool:
    return await rows.find(tx, CapacityPool, pool_id, noun="pool")


async def set_pools(tx: Tx, tt: TicketType, pool_ids: Sequence[str], now: datetime) -> bool:
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
    queued = await draws.waitlisted_neighbours(tx, [tt.id], event_id=tt.event_id)
    await locks.ticket_types(tx, queued, event_id=tt.event_id)
    current = set((await draws.pool_ids_of(tx, [tt.id])).get(tt.id, []))
    changed = False
    for pool_id in sorted(wanted ^ current):
        if pool_id in wanted:
            changed |= await draws.attach(tx, tt.id, pool_id, event_id=tt.event_id)
        else:
            changed |= await draws.detach(tx, tt.id, pool_id, event_id=tt.event_id)
    if changed:
        await rows.change(tx, TicketType, tt.id, {"updated_at": now}, event_id=tt.event_id)
    return changed
