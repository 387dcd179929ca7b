"""What creating an order needs to know before it locks anything, in one read.

An order used to ask six questions one statement at a time: does the event exist, what
are the lines' terms, do buyer limits apply, does the buyer hold a waitlist offer, and
(twice) which pools and event cap the lines draw on. Each statement costs the service more
CPU than the database spends on it (bench/RESULTS.md), so they are one SELECT here, built
once at import.

Nothing read here admits anyone. It lets the order refuse early (a line already short,
terms broken), skip the paths that do not apply (buyer limits, offers), and, when the
lines touch no pool and no event cap, skip re-reading memberships after the stock UPDATE:
that UPDATE returns `membership_version`, which every pool attach or detach bumps under
the same row lock, so an unchanged version proves the membership read here still holds.
On PostgreSQL the event row is read `FOR KEY SHARE`, which other buyers share but an
organizer switching the event cap (`FOR UPDATE`) waits for; so the cap read here cannot
change before this transaction ends. SQLite's `BEGIN IMMEDIATE` makes every read here
authoritative anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, bindparam, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from headcount.domain.attendance import EntryStatus
from headcount.domain.tickets import OrderLine, TicketTypeTerms
from headcount.ledger import locks
from headcount.ledger.attendance import EventCapacity, WaitlistEntry
from headcount.ledger.draws import SHARE_COLUMNS, Shares, fold_shares
from headcount.ledger.models import Event, TicketType
from headcount.ledger.pools import CapacityPool, TicketTypePool


@dataclass(frozen=True, slots=True)
class Basket:
    """The lines' terms and the shared capacities they draw on, as committed at the read."""

    event_found: bool
    terms: dict[str, TicketTypeTerms] = field(default_factory=dict)
    early: Shares = field(default_factory=Shares)
    customer_limits: bool = False  # a max_per_customer on a line's type or one of its pools
    offered: frozenset[str] = frozenset()  # types on which the buyer holds a waitlist offer
    versions: dict[str, int] = field(default_factory=dict)  # membership_version per type
    buckets: dict[str, int] = field(default_factory=dict)  # stock rows per hot-inventory type

    @property
    def bucketed(self) -> frozenset[str]:
        """The hot-inventory types (`stock_buckets` > 1, fixed at creation)."""
        return frozenset(self.buckets)

    @property
    def shared(self) -> bool:
        """Whether any line draws on a pool or an event cap (then memberships are re-read)."""
        return bool(self.early)


def _query(*, lock_event: bool, lock_owner: bool = False) -> Select[*tuple[Any, ...]]:
    offer = exists().where(
        WaitlistEntry.ticket_type_id == TicketType.id,
        WaitlistEntry.attendee_id == bindparam("owner"),
        WaitlistEntry.status == EntryStatus.OFFERED.value,
    )
    query: Select[*tuple[Any, ...]] = (
        select(
            Event.id,
            *SHARE_COLUMNS,  # row[1:8], folded by `draws.fold_shares`
            TicketType.name,
            TicketType.max_per_order,
            TicketType.sales_start,
            TicketType.sales_end,
            TicketType.min_per_order,
            TicketType.max_per_customer,
            CapacityPool.max_per_customer,
            TicketType.membership_version,
            offer,
            TicketType.stock_buckets,
        )
        .select_from(Event)
        .outerjoin(EventCapacity, EventCapacity.event_id == Event.id)
        .outerjoin(TicketType, TicketType.id.in_(bindparam("ids", expanding=True)))
        .outerjoin(TicketTypePool, TicketTypePool.ticket_type_id == TicketType.id)
        .outerjoin(CapacityPool, CapacityPool.id == TicketTypePool.pool_id)
        .where(Event.id == bindparam("event_id"))
    )
    if lock_event:
        query = locks.key_shared(query, of=Event)
    if lock_owner:
        query = query.add_columns(locks.user_column(bindparam("owner")))
    return query


_READ = _query(lock_event=False)
_READ_LOCKING_EVENT = _query(lock_event=True)
_READ_LOCKING_EVENT_AND_OWNER = _query(lock_event=True, lock_owner=True)


async def read(
    tx: AsyncSession,
    event_id: str,
    owner_id: str,
    lines: Sequence[OrderLine],
    *,
    lock_owner: bool = False,
    locked: bool = True,
) -> Basket:
    """Everything `create_order` checks before its inserts, from one SELECT.

    `lock_owner` also takes the per-user lock (`locks.user_column`) (PostgreSQL; SQLite's
    write lock is already held), saving the quota check a round trip. `locked=False`
    takes no lock at all: for a read-only snapshot that only looks (a sold-out mark's
    renewal), where PostgreSQL refuses row locks.
    """
    query = _READ
    if locked and tx.get_bind().dialect.name == "postgresql":
        query = _READ_LOCKING_EVENT_AND_OWNER if lock_owner else _READ_LOCKING_EVENT
    rows = (
        await tx.execute(
            query,
            {"event_id": event_id, "owner": owner_id, "ids": [li.ticket_type_id for li in lines]},
        )
    ).all()
    if not rows:
        return Basket(event_found=False)
    qty = {line.ticket_type_id: line.quantity for line in lines}
    terms: dict[str, TicketTypeTerms] = {}
    versions: dict[str, int] = {}
    offered: set[str] = set()
    buckets: dict[str, int] = {}
    limits = False
    shares_rows = []
    for row in rows:
        tid = row[1]
        if tid is None:
            continue  # the event exists but none of the lines' types do
        shares_rows.append(row[1:8])
        terms[tid] = TicketTypeTerms(tid, row[3], row[8], row[9], row[10], row[11], row[12])
        limits = limits or row[13] is not None or row[14] is not None
        versions[tid] = int(row[15])
        if row[16]:
            offered.add(tid)
        if row[17] > 1:
            buckets[tid] = int(row[17])
    return Basket(
        event_found=True,
        terms=terms,
        early=fold_shares(shares_rows, qty),
        customer_limits=limits,
        offered=frozenset(offered),
        versions=versions,
        buckets=buckets,
    )


__all__ = ["Basket", "offered_to", "read"]


async def offered_to(tx: AsyncSession, ticket_type_id: str, owner_ids: Sequence[str]) -> set[str]:
    """Which of these buyers hold a live waitlist offer on the type (a batch's one read)."""
    found = await tx.execute(
        select(WaitlistEntry.attendee_id).where(
            WaitlistEntry.ticket_type_id == ticket_type_id,
            WaitlistEntry.attendee_id.in_(sorted(set(owner_ids))),
            WaitlistEntry.status == EntryStatus.OFFERED.value,
        )
    )
    return {str(owner) for owner in found.scalars().all()}
