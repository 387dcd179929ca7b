"""The change log: every decision, written in the transaction that made it.

A use case records its changes with `record(tx, …)`; they wait in the unit of work and
are inserted by `flush(tx)` as its last statement before COMMIT (`Database.transaction`
calls it), so a rolled-back decision leaves no row and there is no "publish after
commit" for a crash to lose. Delivery (the feed, webhooks) only reads this table.

Positions follow commit order, not id order. The classic trap: transaction A takes id 41,
transaction B takes id 42 and commits first; a reader that already moved past 42 with
`WHERE id > 41`… never sees 41. Here a row gets no position when it is written. The
sequencer (`sequence`) gives positions, in id order, to the rows it can *see* — which are
committed rows only — one sequencer at a time (it holds the `change_log_state` row lock).
A row that commits later is seen by a later run and gets a larger position, so a reader
paging by position (`page`) can never skip one. Two transactions that touched the same
row are serialised by that row's lock, and since a change row is inserted at the end, the
later one also has the larger id: for every resource, position order is commit order.
Changes of unrelated resources in one sequencer run are ordered by id.

Positions survive pruning: `change_log_state.last_position` is the high-water mark, and
`pruned_through` is the last position that may be gone (an older cursor answers 410).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Index,
    Integer,
    String,
    bindparam,
    delete,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from headcount import origin
from headcount.ledger import locks
from headcount.ledger.models import Base

# SQLite only auto-increments an INTEGER PRIMARY KEY (the rowid), not a BIGINT one.
_BigId = BigInteger().with_variant(Integer(), "sqlite")

_PENDING = "headcount.changes"
# Rows one sequencer run positions: bounds its transaction; the next run takes the rest.
SEQUENCE_BATCH = 5_000


class Change(Base):
    __tablename__ = "changes"

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    # NULL until the sequencer runs; then unique and increasing in commit order.
    position: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    event_id: Mapped[str] = mapped_column(String(80))
    type: Mapped[str] = mapped_column(String(60))
    resource_type: Mapped[str] = mapped_column(String(40))
    resource_id: Mapped[str] = mapped_column(String(80))
    actor_sub: Mapped[str | None] = mapped_column(String(200))
    actor_role: Mapped[str | None] = mapped_column(String(20))
    request_id: Mapped[str | None] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    occurred_at: Mapped[datetime]

    __table_args__ = (
        Index("ix_changes_event_id_position", "event_id", "position"),
        Index("ix_changes_resource", "resource_type", "resource_id", "position"),
        # The sequencer's question, "which rows have no position yet", stays tiny.
        Index(
            "ix_changes_unsequenced",
            "id",
            postgresql_where=text("position IS NULL"),
            sqlite_where=text("position IS NULL"),
        ),
    )


class ChangeLogState(Base):
    """One row: the sequencer's mutex and high-water mark, and the pruning watermark."""

    __tablename__ = "change_log_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_position: Mapped[int] = mapped_column(BigInteger)
    pruned_through: Mapped[int] = mapped_column(BigInteger)


@dataclass(frozen=True, slots=True)
class Pending:
    type: str
    event_id: str
    resource_type: str
    resource_id: str
    payload: Mapping[str, Any]
    at: datetime
    origin: origin.Origin


def record(
    tx: AsyncSession,
    type_: str,
    *,
    event_id: str,
    resource: tuple[str, str],
    payload: Mapping[str, Any],
    at: datetime,
    by: origin.Origin | None = None,
) -> None:
    """Append a change to this unit of work; it is written just before COMMIT, or never.

    `by` defaults to the current request's origin; a batch serving several callers names
    each caller's own.
    """
    pending: list[Pending] = tx.info.setdefault(_PENDING, [])
    pending.append(
        Pending(
            type=str(type_),
            event_id=event_id,
            resource_type=resource[0],
            resource_id=resource[1],
            payload=payload,
            at=at,
            origin=by or origin.current(),
        )
    )


def pending(tx: AsyncSession) -> list[Pending]:
    """What this unit of work will record (tests, and callers deduplicating thresholds)."""
    found: list[Pending] = tx.info.get(_PENDING, [])
    return found


_INSERT = insert(Change.__table__)  # type: ignore[arg-type]


async def flush(tx: AsyncSession) -> int:
    """Insert the recorded changes: one multi-row INSERT, the transaction's last statement."""
    rows: list[Pending] = tx.info.pop(_PENDING, [])
    if not rows:
        return 0
    await tx.execute(
        _INSERT,
        [
            {
                "event_id": r.event_id,
                "type": r.type,
                "resource_type": r.resource_type,
                "resource_id": r.resource_id,
                "actor_sub": r.origin.actor_sub,
                "actor_role": r.origin.actor_role,
                "request_id": r.origin.request_id,
                "payload": dict(r.payload),
                "occurred_at": r.at,
            }
            for r in rows
        ],
    )
    return len(rows)


def discard(tx: AsyncSession) -> None:
    """Forget recorded changes (the transaction is rolling back)."""
    tx.info.pop(_PENDING, None)


_CLAIM_SEQUENCER = locks.claimed(select(ChangeLogState.last_position).where(ChangeLogState.id == 1))
_UNSEQUENCED = (
    select(Change.id).where(Change.position.is_(None)).order_by(Change.id).limit(bindparam("batch"))
)
_POSITION = (
    update(Change.__table__)  # type: ignore[arg-type]
    .where(Change.__table__.c.id == bindparam("change_id"))
    .values(position=bindparam("new_position"))
)


async def sequence(tx: AsyncSession, *, batch: int = SEQUENCE_BATCH) -> int:
    """Give positions to committed, unpositioned changes; returns how many got one.

    Safe on every replica at once: whoever holds the state row's lock sequences, the
    others skip (SKIP LOCKED) instead of queueing. The rows are chosen by a statement that
    runs *after* the lock was taken, so it sees every row committed before.
    """
    last = await tx.scalar(_CLAIM_SEQUENCER)
    if last is None:
        return 0  # another replica is sequencing right now
    ids = list(await tx.scalars(_UNSEQUENCED, {"batch": batch}))
    if not ids:
        return 0
    await tx.execute(
        _POSITION,
        [{"change_id": cid, "new_position": last + n} for n, cid in enumerate(ids, start=1)],
    )
    await tx.execute(
        update(ChangeLogState)
        .where(ChangeLogState.id == 1)
        .values(last_position=last + len(ids))
        .execution_options(synchronize_session=False)
    )
    return len(ids)


async def has_unsequenced(tx: AsyncSession) -> bool:
    return (
        await tx.scalar(select(Change.id).where(Change.position.is_(None)).limit(1))
    ) is not None


@dataclass(frozen=True, slots=True)
class Watermarks:
    last_position: int
    pruned_through: int


async def watermarks(tx: AsyncSession) -> Watermarks:
    row = (
        await tx.execute(select(ChangeLogState.last_position, ChangeLogState.pruned_through))
    ).one()
    return Watermarks(int(row[0]), int(row[1]))


async def page(
    tx: AsyncSession,
    *,
    after: int,
    limit: int,
    event_id: str | None = None,
    event_ids: Collection[str] | None = None,
    types: Collection[str] | None = None,
    resource: tuple[str, str | None] | None = None,
) -> list[Change]:
    """Positioned changes after `after`, in position order, optionally narrowed."""
    query = select(Change).where(Change.position > after)
    if event_id is not None:
        query = query.where(Change.event_id == event_id)
    if event_ids is not None:
        query = query.where(Change.event_id.in_(list(event_ids)))
    if types:
        query = query.where(Change.type.in_(list(types)))
    if resource is not None:
        query = query.where(Change.resource_type == resource[0])
        if resource[1] is not None:
            query = query.where(Change.resource_id == resource[1])
    return list(await tx.scalars(query.order_by(Change.position).limit(limit)))


async def prune(tx: AsyncSession, *, older_than: datetime, through: int, batch: int) -> int:
    """Delete up to `batch` oldest positioned changes older than `older_than`, at most up to
    position `through` (what every consumer has taken); returns how many went."""
    doomed: list[tuple[int, int]] = [
        (int(cid), int(position or 0))
        for cid, position in await tx.execute(
            select(Change.id, Change.position)
            .where(
                Change.position.is_not(None),
                Change.position <= through,
                Change.occurred_at < older_than,
            )
            .order_by(Change.position)
            .limit(batch)
        )
    ]
    if not doomed:
        return 0
    await tx.execute(delete(Change).where(Change.id.in_([cid for cid, _ in doomed])))
    newest = max(position for _, position in doomed)
    await tx.execute(
        update(ChangeLogState)
        .where(ChangeLogState.id == 1, ChangeLogState.pruned_through < newest)
        .values(pruned_through=newest)
        .execution_options(synchronize_session=False)
    )
    return len(doomed)
