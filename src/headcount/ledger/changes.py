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
Pruning deletes a prefix of the log and folds what it deletes into `change_baselines`
(per counter, `domain/replay.py`), so replaying the baselines and what is left still
gives the ledger's counters (`reconcile`).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Index,
    Integer,
    String,
    bindparam,
    cast,
    column,
    delete,
    func,
    insert,
    null,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from headcount import origin
from headcount.domain import replay
from headcount.domain.changes import OPPOSITE, ChangeType
from headcount.ledger import locks
from headcount.ledger.models import Base
from headcount.ledger.types import UTCDateTime

# SQLite only auto-increments an INTEGER PRIMARY KEY (the rowid), not a BIGINT one.
_BigId = BigInteger().with_variant(Integer(), "sqlite")
_POSITIONED = text("position IS NOT NULL")

_PENDING = "headcount.changes"
_CROSSED = "headcount.changes.crossed"  # thresholds: written after the decisions
_RODE = "headcount.changes.rode"  # how many rode in a deciding statement (`written`)
_AT = "headcount.changes.at"
# Set on a unit of work by `Database` when HEADCOUNT_CHANGE_LOG=off (measurement only).
OFF = "headcount.changes.off"
# Rows one sequencer run positions: bounds its transaction; the next run takes the rest.
SEQUENCE_BATCH = 5_000


class Change(Base):
    __tablename__ = "changes"

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    # NULL until the sequencer runs; then unique and increasing in commit order.
    position: Mapped[int | None] = mapped_column(BigInteger)
    event_id: Mapped[str] = mapped_column(String(80))
    type: Mapped[str] = mapped_column(String(60))
    resource_type: Mapped[str] = mapped_column(String(40))
    resource_id: Mapped[str] = mapped_column(String(80))
    actor_sub: Mapped[str | None] = mapped_column(String(200))
    actor_role: Mapped[str | None] = mapped_column(String(20))
    request_id: Mapped[str | None] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    occurred_at: Mapped[datetime]

    # Every index costs each change twice, once written and once positioned, so the
    # readers' indexes hold positioned rows only: a change is written into the primary
    # key and the sequencer's index alone, on the order's hot path.
    __table_args__ = (
        Index(
            "uq_changes_position",
            "position",
            unique=True,
            postgresql_where=_POSITIONED,
            sqlite_where=_POSITIONED,
        ),
        Index(
            "ix_changes_event_id_position",
            "event_id",
            "position",
            postgresql_where=_POSITIONED,
            sqlite_where=_POSITIONED,
        ),
        # An event's changes of some types (the audit trail, `type=` filters): a few
        # rows among an event's many orders, found without reading the others.
        Index(
            "ix_changes_event_id_type_position",
            "event_id",
            "type",
            "position",
            postgresql_where=_POSITIONED,
            sqlite_where=_POSITIONED,
        ),
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


class ChangeBaseline(Base):
    """A counter's value folded from pruned changes (`domain/replay.py` keys)."""

    __tablename__ = "change_baselines"

    counter: Mapped[str] = mapped_column(String(200), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(80), index=True)
    value: Mapped[int] = mapped_column(BigInteger)


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
) -> Pending | None:
    """Append a change to this unit of work; it is written just before COMMIT, or never.

    `by` defaults to the current request's origin; a batch serving several callers names
    each caller's own. Returns what was recorded (None while the log is off).
    """
    if OFF in tx.info:
        return None
    tx.info[_AT] = at
    found = Pending(str(type_), event_id, *resource, payload, at, by or origin.current())
    tx.info.setdefault(_PENDING, []).append(found)
    return found


def row_of(change: Pending) -> dict[str, Any]:
    """A recorded change as the columns of its row."""
    return dict(zip(_RIDING, _values(change), strict=True))


def _values(change: Pending) -> tuple[Any, ...]:
    """A recorded change's column values, in the order of `_RIDING`."""
    by = change.origin
    return (
        *(change.event_id, change.type, change.resource_type, change.resource_id),
        *(by.actor_sub, by.actor_role, by.request_id, change.payload, change.at),
    )


def written(tx: AsyncSession, *rode: Pending) -> None:
    """`rode` were inserted by a statement of the caller's making (they rode in a deciding
    statement: `inventory.reserve`, `orders.place_together`): `flush` must not insert them
    again, but still counts them."""
    gone = {id(change) for change in rode}
    pending: list[Pending] = tx.info.get(_PENDING, [])
    kept = [found for found in pending if id(found) not in gone]
    tx.info[_RODE] = tx.info.get(_RODE, 0) + len(pending) - len(kept)
    pending[:] = kept


# The columns a riding statement fills, in the order of its `unnest`.
_RIDING = (
    "event_id",
    "type",
    "resource_type",
    "resource_id",
    "actor_sub",
    "actor_role",
    "request_id",
    "payload",
    "occurred_at",
)
_COLUMNS = ", ".join(_RIDING)


def arrays_of(rows: Sequence[Pending]) -> dict[str, list[Any]]:
    """Recorded changes as one array per column (`c_<column>`), for a statement that
    inserts them with `unnest` (PostgreSQL): a parameter per column rather than per value,
    so the driver, not SQLAlchemy, handles each row. Payloads go as JSON text."""
    columns = [list(values) for values in zip(*map(_values, rows), strict=True)] or [
        [] for _ in _RIDING
    ]
    found = {f"c_{name}": values for name, values in zip(_RIDING, columns, strict=True)}
    # The JSON type's own encoding (SQLAlchemy's default serializer is json.dumps).
    found["c_payload"] = [json.dumps(p) for p in found["c_payload"]]
    return found


# `arrays_of` as rows, numbered so that their ids follow the order given.
_UNNEST = (
    "unnest(CAST(:c_event_id AS varchar[]), CAST(:c_type AS varchar[]), "
    "CAST(:c_resource_type AS varchar[]), CAST(:c_resource_id AS varchar[]), "
    "CAST(:c_actor_sub AS varchar[]), CAST(:c_actor_role AS varchar[]), "
    "CAST(:c_request_id AS varchar[]), CAST(CAST(:c_payload AS text[]) AS json[]), "
    "CAST(:c_occurred_at AS timestamptz[])) WITH ORDINALITY "
    f"AS c({_COLUMNS}, n)"
)


def riding(statement: str) -> str:
    """`statement` (SQL text, PostgreSQL) with the changes of `arrays_of` inserted by a
    data-modifying CTE of it: they are written when it runs, whatever it returns.

    Only for a statement that takes the transaction's last row lock (or runs after it),
    so that a later transaction deciding about the same rows gets larger ids, as with
    `flush`; the caller then calls `written`.
    """
    # Constants only: the SQL is this module's and the caller's, never a value.
    return (
        f"WITH logged AS (INSERT INTO changes ({_COLUMNS}) "  # noqa: S608
        f"SELECT {_COLUMNS} FROM {_UNNEST} ORDER BY n) {statement}"
    )


def stamp(tx: AsyncSession, at: datetime) -> None:
    """When this unit of work's decisions are made (the use case's clock), for the changes
    ledger statements record deep inside it (`now`)."""
    tx.info[_AT] = at


def now(tx: AsyncSession) -> datetime:
    """The unit of work's decision time: its `stamp`, or its latest recorded change's."""
    found = tx.info.get(_AT)
    return found if isinstance(found, datetime) else datetime.now(UTC)


def crossed(
    tx: AsyncSession,
    type_: ChangeType,
    resource: tuple[str, str],
    event_id: str,
    payload: Mapping[str, Any],
) -> None:
    """Record a threshold crossing, or cancel the opposite crossing of the same resource
    made earlier in this unit of work (a release whose stock is offered on at once never
    left the resource sold out, as far as anyone outside can tell). Crossings are written
    after the unit of work's decisions: first what was decided, then what it crossed.

    The deciding statements hold the resource's row lock, so crossings of one resource
    are serialised and what commits alternates: exactly one row per transition. A
    crossing happens at the unit of work's decision time (`now`), to its caller.
    """
    if OFF in tx.info:
        return
    crossings: list[Pending] = tx.info.setdefault(_CROSSED, [])
    undone = OPPOSITE.get(type_)
    for n in range(len(crossings) - 1, -1, -1):
        earlier = crossings[n]
        if (earlier.resource_type, earlier.resource_id) != resource:
            continue
        if earlier.type == undone:
            del crossings[n]
            return
        if earlier.type == type_:
            return  # the same crossing seen twice (two statements judged it): once is enough
    crossings.append(Pending(str(type_), event_id, *resource, payload, now(tx), origin.current()))


def settle(tx: AsyncSession) -> None:
    """The thresholds crossed so far are written in their turn, before what is decided
    next: each order of a batch (capacity/batching.py) is a unit of work of its own to
    the feed, so a crossing follows the order that made it, not the whole batch."""
    crossings: list[Pending] = tx.info.pop(_CROSSED, [])
    if crossings:
        tx.info.setdefault(_PENDING, []).extend(crossings)


def pending(tx: AsyncSession) -> list[Pending]:
    """What this unit of work will record, in the order it will be written: its decisions
    in the order they were made, then the thresholds they crossed (net of any undone)."""
    decided: list[Pending] = tx.info.get(_PENDING, [])
    crossings: list[Pending] = tx.info.get(_CROSSED, [])
    return decided + crossings


@asynccontextmanager
async def savepoint(tx: AsyncSession) -> AsyncIterator[None]:
    """`tx.begin_nested()` whose rollback also forgets what was recorded inside it."""
    before = {name: list(tx.info.get(name, [])) for name in (_PENDING, _CROSSED)}
    try:
        async with tx.begin_nested():
            yield
    except BaseException:
        tx.info.update(before)
        raise


_INSERT = insert(Change.__table__)  # type: ignore[arg-type]


async def flush(tx: AsyncSession) -> int:
    """Insert the recorded changes: one multi-row INSERT, the transaction's last statement.

    Returns how many changes this unit of work wrote, those that rode in a deciding
    statement included (the caller wakes the sequencer for them).
    """
    rows = pending(tx)
    rode: int = tx.info.pop(_RODE, 0)
    tx.info.pop(_PENDING, None)
    tx.info.pop(_CROSSED, None)
    if not rows:
        return rode
    values = [row_of(r) for r in rows]
    # One row (an order's) is a plain execute, cheaper than the many-rows path.
    await tx.execute(_INSERT, values[0] if len(values) == 1 else values)
    return len(rows) + rode


def discard(tx: AsyncSession) -> None:
    """Forget recorded changes (the transaction is rolling back)."""
    for name in (_PENDING, _CROSSED, _RODE):
        tx.info.pop(name, None)


# --- the sequencer ---------------------------------------------------------------------

_CLAIM_SEQUENCER = locks.claimed(select(ChangeLogState.last_position).where(ChangeLogState.id == 1))
_NEXT = (
    select(Change.id, func.row_number().over(order_by=Change.id).label("n"))
    .where(Change.position.is_(None))
    .order_by(Change.id)
    .limit(bindparam("batch", type_=Integer))
    .subquery()
)
# One statement positions the whole batch: the ids are chosen by its subquery, which runs
# after the sequencer's lock was taken and so sees every change committed before.
_POSITION = (
    update(Change)
    .where(Change.id == _NEXT.c.id)
    .values(position=bindparam("last", type_=BigInteger) + _NEXT.c.n)
    .returning(Change.occurred_at)
    .execution_options(synchronize_session=False)
)
_ADVANCE = (
    update(ChangeLogState)
    .where(ChangeLogState.id == 1)
    .values(last_position=bindparam("last_position", type_=BigInteger))
    .execution_options(synchronize_session=False)
)


# PostgreSQL: the same in one statement that returns two figures, not a row per change
# (a run positions up to `SEQUENCE_BATCH`: their timestamps are read in SQL, not Python).
# It runs after the claim, so its snapshot too sees every change committed before it.
_POSITION_AND_ADVANCE = text(
    """
    WITH next AS (
        SELECT id, row_number() OVER (ORDER BY id) AS n
          FROM changes WHERE position IS NULL ORDER BY id LIMIT :batch
    ), positioned AS (
        UPDATE changes SET position = :last + next.n
          FROM next WHERE changes.id = next.id
     RETURNING changes.occurred_at
    ), advanced AS (
        UPDATE change_log_state SET last_position = :last + (SELECT count(*) FROM positioned)
         WHERE id = 1 AND EXISTS (SELECT 1 FROM positioned)
    )
    SELECT count(*) AS count, min(occurred_at) AS oldest FROM positioned
    """
).bindparams(bindparam("batch", type_=Integer), bindparam("last", type_=BigInteger))
_POSITIONED_FIGURES = _POSITION_AND_ADVANCE.columns(
    column("count", BigInteger), column("oldest", UTCDateTime())
)


@dataclass(frozen=True, slots=True)
class Sequenced:
    count: int
    oldest: datetime | None  # the earliest `occurred_at` positioned (the run's worst lag)


async def sequence(tx: AsyncSession, *, batch: int = SEQUENCE_BATCH) -> Sequenced | None:
    """Give positions to committed, unpositioned changes; None if another sequencer runs.

    Safe on every replica at once: whoever holds the state row's lock sequences, the
    others skip (SKIP LOCKED) instead of queueing.
    """
    last = await tx.scalar(_CLAIM_SEQUENCER)
    if last is None:
        return None  # another replica is sequencing right now
    if tx.get_bind().dialect.name == "postgresql":
        count, oldest = (
            await tx.execute(_POSITIONED_FIGURES, {"last": last, "batch": batch})
        ).one()
        return Sequenced(int(count), oldest)
    stamps = list(await tx.scalars(_POSITION, {"last": last, "batch": batch}))
    if stamps:
        await tx.execute(_ADVANCE, {"last_position": last + len(stamps)})
    return Sequenced(len(stamps), min(stamps) if stamps else None)


_ANY_UNSEQUENCED = select(Change.id).where(Change.position.is_(None)).limit(1)


async def has_unsequenced(tx: AsyncSession) -> bool:
    """The idle sequencer's one read: a probe of the partial index on unpositioned rows."""
    return (await tx.scalar(_ANY_UNSEQUENCED)) is not None


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
    """Positioned changes after `after`, in position order, optionally narrowed.

    Read it in the same transaction as `watermarks` (a `Database.snapshot()`), so that a
    cursor older than `pruned_through` is refused rather than silently skipping.
    """
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


# --- retention -------------------------------------------------------------------------

# Consumers that page the log on their own (webhook endpoints) say which position they
# still need; retention keeps it. Each returns the lowest position it has not yet taken
# (None: it needs nothing more), read in the pruning transaction.
Retainer = Callable[[AsyncSession], Awaitable[int | None]]
RETAINERS: list[Retainer] = []


def retain_for(retainer: Retainer) -> Retainer:
    """Register a consumer's `Retainer` (usable as a decorator); prune never passes it."""
    if retainer not in RETAINERS:
        RETAINERS.append(retainer)
    return retainer


async def prunable_through(tx: AsyncSession, last_position: int) -> int:
    """The highest position every registered consumer has taken (at most `last_position`)."""
    through = last_position
    for retainer in RETAINERS:
        needed = await retainer(tx)
        if needed is not None:
            through = min(through, needed - 1)
    return through


async def retire(tx: AsyncSession, *, older_than: datetime, batch: int) -> int | None:
    """One retention step: prune up to `batch` changes older than `older_than` that every
    consumer has taken; None if another replica holds the pruner right now."""
    if not await locks.singleton(tx, "changes.prune"):
        return None
    marks = await watermarks(tx)
    through = await prunable_through(tx, marks.last_position)
    return await prune(tx, older_than=older_than, through=through, batch=batch)


_OLDEST = (
    select(Change.id, Change.position, Change.occurred_at, Change.type, Change.event_id)
    .add_columns(Change.payload)
    .where(Change.position.is_not(None), Change.position > bindparam("pruned", type_=BigInteger))
    .order_by(Change.position)
    .limit(bindparam("batch", type_=Integer))
)


async def prune(tx: AsyncSession, *, older_than: datetime, through: int, batch: int) -> int:
    """Delete the oldest positioned changes, up to `batch`, as long as each is older than
    `older_than` and at most at `through` (what every consumer has taken); fold them into
    the baselines; returns how many went.

    Only a prefix of the log goes (the first young or still needed change stops it), so
    every position after `pruned_through` is still there. The caller makes sure one
    pruner runs at a time (`locks.singleton`).
    """
    marks = await watermarks(tx)
    doomed: list[tuple[int, int, str, str, dict[str, Any]]] = []
    for cid, position, at, type_name, event_id, payload in await tx.execute(
        _OLDEST, {"pruned": marks.pruned_through, "batch": batch}
    ):
        if position > through or at >= older_than:
            break
        doomed.append((int(cid), int(position), type_name, event_id, payload))
    if not doomed:
        return 0
    await _fold_into_baselines(tx, [(t, e, p) for _, _, t, e, p in doomed])
    await tx.execute(delete(Change).where(Change.id.in_([d[0] for d in doomed])))
    await tx.execute(
        update(ChangeLogState)
        .where(ChangeLogState.id == 1, ChangeLogState.pruned_through < doomed[-1][1])
        .values(pruned_through=doomed[-1][1])
        .execution_options(synchronize_session=False)
    )
    return len(doomed)


async def _fold_into_baselines(
    tx: AsyncSession, folded: list[tuple[str, str, Mapping[str, Any]]]
) -> None:
    moves: dict[str, tuple[str, int]] = {}
    for type_name, event_id, payload in folded:
        for counter, delta in replay.effects(type_name, event_id, payload):
            moves[counter] = (event_id, moves.get(counter, (event_id, 0))[1] + delta)
    if not moves:
        return
    factory = postgresql.insert if tx.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = factory(ChangeBaseline)
    await tx.execute(
        statement.on_conflict_do_update(
            index_elements=["counter"],
            set_={"value": ChangeBaseline.value + statement.excluded.value},
        ),
        [
            {"counter": counter, "event_id": event_id, "value": delta}
            for counter, (event_id, delta) in sorted(moves.items())
        ],
    )


# --- replay ----------------------------------------------------------------------------

# Baselines and every change left, in one statement: one snapshot even under READ
# COMMITTED, so a prune committing meanwhile can neither hide nor double-count a change.
_REPLAY = union_all(
    select(
        ChangeBaseline.counter.label("counter"),
        ChangeBaseline.event_id.label("event_id"),
        ChangeBaseline.value.label("value"),
        cast(null(), JSON).label("payload"),
    ),
    select(Change.type, Change.event_id, cast(null(), BigInteger), Change.payload),
)


async def replayed(tx: AsyncSession) -> dict[str, int]:
    """Every counter the log accounts for: baselines plus the effects of every change
    left (unpositioned ones too: they are committed). A sum, so order does not matter."""
    counters: dict[str, int] = {}
    result = await tx.stream(_REPLAY)
    async for name, event_id, value, payload in result:
        if value is not None:
            counters[name] = counters.get(name, 0) + int(value)
        else:
            replay.fold([(name, event_id, payload or {})], counters)
    return counters
