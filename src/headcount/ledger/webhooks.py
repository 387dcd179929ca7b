"""Webhook endpoints and their deliveries: fan-out, the ordered claim, the delivery log.

**Fan-out.** Each endpoint keeps a cursor, `fanned_through`: every positioned change up
to it has been turned into a delivery (or did not match). `fan_out` claims endpoints that
are behind the log's high-water mark (`claimed`: SKIP LOCKED, so replicas split them),
reads the changes after the lowest cursor once, inserts a delivery per matching change
and moves each cursor, all in one transaction: a change is fanned out exactly once per
endpoint, and none is missed. Positions are committed by the sequencer a whole run at a
time, so the positions a reader can see form an unbroken prefix (minus pruned ones):
moving a cursor to the high-water mark read first, or to the last row of a short page,
skips nothing.

**Ordering.** A delivery is sent only when it is the oldest pending delivery of its
(endpoint, event) — its group's head. `claim` takes due heads with SKIP LOCKED and leases
them (`leased_until`, a random `lease_token`) in its own short transaction; the sender
then posts outside any transaction. While a head is pending, nobody can claim the
deliveries behind it, so its holder may send them after it, one by one, each only after
the previous one succeeded, and settle them all at once. A replica killed mid-send leaves
the head leased; the lease lapses and another replica sends it again with the same
`webhook-id` (receivers deduplicate on it).

**Retention.** A delivery carries the exact body it sends, so pruning a change never
breaks a pending delivery; `fanned_out_through` tells the change-log pruner how far every
endpoint has been fanned out.

These tables are only ever locked by the relay's own short transactions and the
organizer's webhook requests, which touch no capacity row (see ledger/locks.py).
"""

from __future__ import annotations

import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ColumnElement,
    ForeignKey,
    Index,
    Integer,
    Select,
    String,
    Text,
    UniqueConstraint,
    and_,
    bindparam,
    column,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    true,
    update,
    values,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, aliased, mapped_column

from headcount.domain import webhooks as rules
from headcount.domain.ids import new_id
from headcount.ledger import changes, locks
from headcount.ledger.models import Base, Event, RowId

# Changes one fan-out run reads, and endpoints it serves: they bound its transaction.
FAN_OUT_BATCH = 2_000
FAN_OUT_ENDPOINTS = 200
RESPONSE_SNIPPET = 1_000
ERROR_LENGTH = 500


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    # Abandoned after failing for the whole retry window while its endpoint kept working
    # for other messages (a message the receiver refuses); redelivery revives it.
    FAILED = "failed"


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"

    id: Mapped[RowId]
    # Scope: the events of this organizer (NULL: every event; the platform service only),
    # or just `event_ids` when set.
    organizer_id: Mapped[str | None] = mapped_column(String(200), index=True)
    event_ids: Mapped[list[str] | None] = mapped_column(JSON)
    types: Mapped[list[str]] = mapped_column(JSON)
    url: Mapped[str] = mapped_column(String(rules.MAX_URL_LENGTH))
    description: Mapped[str] = mapped_column(String(500))
    secret: Mapped[str] = mapped_column(String(200))
    previous_secret: Mapped[str | None] = mapped_column(String(200))
    previous_secret_until: Mapped[datetime | None]
    enabled: Mapped[bool] = mapped_column(Boolean)
    disabled_reason: Mapped[str | None] = mapped_column(String(300))
    disabled_at: Mapped[datetime | None]
    # The fan-out cursor: every change positioned at or below it has been fanned out.
    fanned_through: Mapped[int] = mapped_column(BigInteger)
    failing_since: Mapped[datetime | None]
    failures_in_a_row: Mapped[int] = mapped_column(Integer)
    last_success_at: Mapped[datetime | None]
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"

    # The `webhook-id` header: one per (endpoint, change), the same on every attempt.
    id: Mapped[RowId]
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(80))
    position: Mapped[int] = mapped_column(BigInteger)
    type: Mapped[str] = mapped_column(String(60))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime]
    # Start of the retry window (creation; reset by redelivery and by re-enabling).
    retrying_since: Mapped[datetime]
    leased_until: Mapped[datetime | None]
    lease_token: Mapped[str | None] = mapped_column(String(40))
    leased_by: Mapped[str | None] = mapped_column(String(200))
    last_attempt_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(ERROR_LENGTH))
    last_response: Mapped[str | None] = mapped_column(String(RESPONSE_SNIPPET))
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]

    __table_args__ = (
        UniqueConstraint("endpoint_id", "position"),
        # The head question, "is anything of this group older and still pending?", and
        # the claim's "which pending deliveries are due", stay on small partial indexes.
        Index(
            "ix_webhook_deliveries_pending",
            "endpoint_id",
            "event_id",
            "position",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        Index(
            "ix_webhook_deliveries_due",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        Index("ix_webhook_deliveries_endpoint_status", "endpoint_id", "status", "position"),
    )


# Endpoints: plain reads and writes of whole rows.


async def add_endpoint(tx: AsyncSession, endpoint: WebhookEndpoint) -> None:
    """A new endpoint starts at the log's current head: it receives what happens next."""
    endpoint.fanned_through = (await changes.watermarks(tx)).last_position
    tx.add(endpoint)
    await tx.flush()


async def endpoints(
    tx: AsyncSession, *, organizer_id: str | None, limit: int
) -> Sequence[WebhookEndpoint]:
    """Newest first; one organizer's when asked (None: all of them)."""
    query = select(WebhookEndpoint)
    if organizer_id is not None:
        query = query.where(WebhookEndpoint.organizer_id == organizer_id)
    query = query.order_by(WebhookEndpoint.created_at.desc(), WebhookEndpoint.id).limit(limit)
    return list(await tx.scalars(query))


async def delete_endpoint(tx: AsyncSession, endpoint_id: str) -> None:
    """The endpoint and its whole delivery log."""
    await tx.execute(delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id))
    await tx.execute(delete(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id))


async def resume(tx: AsyncSession, endpoint_id: str, now: datetime) -> int:
    """A re-enabled endpoint's pending deliveries start a fresh retry window, due now."""
    done = await tx.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.endpoint_id == endpoint_id,
            WebhookDelivery.status == DeliveryStatus.PENDING,
        )
        .values(retrying_since=now, next_attempt_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(done, "rowcount", 0) or 0)


async def organizers_of(tx: AsyncSession, event_ids: Collection[str]) -> dict[str, str]:
    """Each existing event's organizer."""
    if not event_ids:
        return {}
    found = await tx.execute(
        select(Event.id, Event.organizer_id).where(Event.id.in_(sorted(set(event_ids))))
    )
    return {str(eid): str(org) for eid, org in found}


async def fanned_out_through(tx: AsyncSession) -> int | None:
    """The retention hook: the highest position every endpoint has fanned out (None when
    there are no endpoints). The change-log pruner must not delete past it."""
    low = await tx.scalar(select(func.min(WebhookEndpoint.fanned_through)))
    return None if low is None else int(low)


# Fan-out.

_INSERT_DELIVERY = insert(WebhookDelivery.__table__)  # type: ignore[arg-type]
_MOVE_CURSOR = (
    update(WebhookEndpoint.__table__)  # type: ignore[arg-type]
    .where(WebhookEndpoint.__table__.c.id == bindparam("endpoint_id"))
    .values(fanned_through=bindparam("through"))
)


async def fan_out(
    tx: AsyncSession,
    *,
    now: datetime,
    batch: int = FAN_OUT_BATCH,
    endpoint_limit: int = FAN_OUT_ENDPOINTS,
) -> int:
    """Turn newly positioned changes into deliveries; returns how many were created."""
    head = (await changes.watermarks(tx)).last_position
    claimed = list(
        await tx.scalars(
            locks.claimed(
                select(WebhookEndpoint)
                .where(WebhookEndpoint.fanned_through < head)
                .order_by(WebhookEndpoint.fanned_through, WebhookEndpoint.id)
                .limit(endpoint_limit)
            )
        )
    )
    if not claimed:
        return 0
    low = min(e.fanned_through for e in claimed)
    rows = await changes.page(tx, after=low, limit=batch)
    # A full page may have more behind it; a short one holds everything positioned now.
    if len(rows) == batch:
        through = rows[-1].position or low
    else:
        through = max(head, rows[-1].position or 0) if rows else head
    organizers = await organizers_of(tx, {r.event_id for r in rows})
    made: list[dict[str, Any]] = []
    for endpoint in claimed:
        for change in rows:
            position = change.position or 0
            if position <= endpoint.fanned_through or position > through:
                continue
            if not rules.type_matches(endpoint.types, change.type):
                continue
            if not rules.in_scope(
                scope_organizer=endpoint.organizer_id,
                scope_events=endpoint.event_ids,
                event_id=change.event_id,
                event_organizer=organizers.get(change.event_id),
            ):
                continue
            made.append(_delivery(endpoint.id, change, now))
    if made:
        await tx.execute(_INSERT_DELIVERY, made)
    await tx.execute(
        _MOVE_CURSOR,
        [{"endpoint_id": e.id, "through": max(through, e.fanned_through)} for e in claimed],
    )
    return len(made)


def _delivery(endpoint_id: str, change: changes.Change, now: datetime) -> dict[str, Any]:
    position = change.position or 0
    return {
        "id": new_id("msg"),
        "endpoint_id": endpoint_id,
        "event_id": change.event_id,
        "position": position,
        "type": change.type,
        "body": rules.render_body(
            change_type=change.type,
            event_id=change.event_id,
            resource=(change.resource_type, change.resource_id),
            actor=(change.actor_sub, change.actor_role),
            request_id=change.request_id,
            payload=change.payload,
            occurred_at=change.occurred_at,
            position=position,
        ),
        "status": DeliveryStatus.PENDING.value,
        "attempts": 0,
        "next_attempt_at": now,
        "retrying_since": now,
        "created_at": now,
    }


# The ordered claim.


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One delivery to send, with what its attempt needs."""

    id: str
    event_id: str
    position: int
    body: str
    attempts: int
    retrying_since: datetime


@dataclass(frozen=True, slots=True)
class Claimed:
    """A leased group head and the deliveries due behind it, in position order."""

    endpoint_id: str
    url: str
    secrets: list[str]
    leased_until: datetime
    lease_token: str
    queue: list[Outgoing] = field(default_factory=list)


_Earlier = aliased(WebhookDelivery)
_ENABLED = select(WebhookEndpoint.id).where(WebhookEndpoint.enabled.is_(True))
_OUTGOING = (
    WebhookDelivery.id,
    WebhookDelivery.endpoint_id,
    WebhookDelivery.event_id,
    WebhookDelivery.position,
    WebhookDelivery.body,
    WebhookDelivery.attempts,
    WebhookDelivery.retrying_since,
    WebhookDelivery.next_attempt_at,
)


def _outgoing(row: Any) -> Outgoing:
    return Outgoing(
        id=row.id,
        event_id=row.event_id,
        position=int(row.position),
        body=row.body,
        attempts=int(row.attempts),
        retrying_since=row.retrying_since,
    )


async def claim(
    tx: AsyncSession,
    *,
    now: datetime,
    leased_until: datetime,
    relay: str,
    limit: int,
    follow: int,
) -> list[Claimed]:
    """Lease up to `limit` due group heads of enabled endpoints, each with up to `follow`
    due deliveries queued behind it."""
    earlier_pending = exists().where(
        _Earlier.endpoint_id == WebhookDelivery.endpoint_id,
        _Earlier.event_id == WebhookDelivery.event_id,
        _Earlier.status == DeliveryStatus.PENDING,
        _Earlier.position < WebhookDelivery.position,
    )
    heads = list(
        await tx.execute(
            locks.claimed(
                select(*_OUTGOING)
                .where(
                    WebhookDelivery.status == DeliveryStatus.PENDING,
                    WebhookDelivery.next_attempt_at <= now,
                    or_(WebhookDelivery.leased_until.is_(None), WebhookDelivery.leased_until < now),
                    WebhookDelivery.endpoint_id.in_(_ENABLED),
                    ~earlier_pending,
                )
                .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.position)
                .limit(limit)
            )
        )
    )
    if not heads:
        return []
    targets = {
        e.id: e
        for e in await tx.scalars(
            select(WebhookEndpoint).where(WebhookEndpoint.id.in_({h.endpoint_id for h in heads}))
        )
    }
    found: list[Claimed] = []
    for head in heads:
        endpoint = targets[head.endpoint_id]
        queue = [_outgoing(head)]
        if follow > 0:
            queue += await _behind(tx, head, now, follow)
        # One token per group: it settles and releases exactly this group's lease.
        lease_token = secrets.token_hex(8)
        await tx.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_([d.id for d in queue]))
            .values(leased_until=leased_until, lease_token=lease_token, leased_by=relay)
            .execution_options(synchronize_session=False)
        )
        found.append(
            Claimed(
                endpoint_id=endpoint.id,
                url=endpoint.url,
                secrets=_secrets_in_use(endpoint, now),
                leased_until=leased_until,
                lease_token=lease_token,
                queue=queue,
            )
        )
    return found


async def _behind(tx: AsyncSession, head: Any, now: datetime, follow: int) -> list[Outgoing]:
    """The group's next pending deliveries, up to the first that is not due yet."""
    rows = await tx.execute(
        select(*_OUTGOING)
        .where(
            WebhookDelivery.endpoint_id == head.endpoint_id,
            WebhookDelivery.event_id == head.event_id,
            WebhookDelivery.status == DeliveryStatus.PENDING,
            WebhookDelivery.position > head.position,
        )
        .order_by(WebhookDelivery.position)
        .limit(follow)
    )
    queue: list[Outgoing] = []
    for row in rows:
        if row.next_attempt_at > now:
            break
        queue.append(_outgoing(row))
    return queue


def _secrets_in_use(endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    kept = endpoint.previous_secret is not None and (
        endpoint.previous_secret_until is None or endpoint.previous_secret_until > now
    )
    return [
        endpoint.secret,
        *([endpoint.previous_secret] if kept and endpoint.previous_secret else []),
    ]


# Settling what was sent.


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one send did."""

    delivery: Outgoing
    at: datetime
    ok: bool
    status_code: int | None
    error: str | None
    response: str | None
    retry_in: float  # seconds until the next attempt, if it failed


async def settle_many(
    tx: AsyncSession,
    records: Sequence[tuple[Claimed, Sequence[Attempt]]],
    *,
    now: datetime,
) -> list[str]:
    """Record the attempts of claims, each in the order they were made; release their
    leases. The successes of all of them take one statement, whatever their number.

    A claim's sends stop at the first failure, so its attempts are successes and at most
    one failure, last. A success is recorded whoever holds the lease now (it was
    delivered); a failure only while our lease still holds: if it lapsed, another relay
    owns the retry. Returns the ids given up (status `failed`).
    """
    given_up: list[str] = []
    sent = [a for _, attempts in records for a in attempts if a.ok]
    if sent:
        await tx.execute(
            _DELIVERED,
            [
                {
                    "delivery_id": a.delivery.id,
                    "at": a.at,
                    "status_code": a.status_code,
                    "response": _snippet(a.response),
                }
                for a in sent
            ],
        )
        last_success: dict[str, datetime] = {}
        for claimed, attempts in records:
            for attempt in attempts:
                if attempt.ok:
                    last_success[claimed.endpoint_id] = max(
                        attempt.at, last_success.get(claimed.endpoint_id, attempt.at)
                    )
        await tx.execute(
            _SUCCEEDED, [{"endpoint_id": e, "at": at} for e, at in sorted(last_success.items())]
        )
    for claimed, attempts in records:
        for attempt in attempts:
            if not attempt.ok:
                given_up += await _record_failure(tx, claimed, attempt, now)
        if len(attempts) < len(claimed.queue):
            await release(tx, claimed)  # the rest was not sent: anyone may take it now
    return given_up


_SUCCEEDED = (
    update(WebhookEndpoint.__table__)  # type: ignore[arg-type]
    .where(WebhookEndpoint.__table__.c.id == bindparam("endpoint_id"))
    .values(failing_since=None, failures_in_a_row=0, last_success_at=bindparam("at"))
)


async def _record_failure(
    tx: AsyncSession, claimed: Claimed, attempt: Attempt, now: datetime
) -> list[str]:
    disabled = await _count_failure(tx, claimed.endpoint_id, attempt.at, now)
    give_up = not disabled and rules.gives_up(attempt.delivery.retrying_since, now)
    await tx.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == attempt.delivery.id,
            WebhookDelivery.lease_token == claimed.lease_token,
        )
        .values(
            status=DeliveryStatus.FAILED if give_up else DeliveryStatus.PENDING,
            next_attempt_at=now + timedelta(seconds=attempt.retry_in),
            attempts=WebhookDelivery.attempts + 1,
            last_attempt_at=attempt.at,
            last_status_code=attempt.status_code,
            last_error=(attempt.error or "failed")[:ERROR_LENGTH],
            last_response=_snippet(attempt.response),
            leased_until=None,
            lease_token=None,
        )
        .execution_options(synchronize_session=False)
    )
    return [attempt.delivery.id] if give_up else []


async def lease_behind_many(
    tx: AsyncSession,
    claims: Sequence[Claimed],
    *,
    now: datetime,
    follow: int,
    leased_until: datetime,
) -> list[Claimed | None]:
    """Lease the next due deliveries of each claim's group, behind its last one, while the
    claim is still pending and leased to the caller (so its group has no head anybody else
    can claim, and nobody else can take these in between).

    The caller sends them only after every delivery of the claim succeeded, and releases
    them (`release`) if one failed: a sender can go on with its group's next batch while
    the previous one is being settled, and a backlog drains without a claim per batch.
    On PostgreSQL every group is read by one LATERAL query and leased by one statement.
    """
    if not claims:
        return []
    rows_of: dict[int, list[Any]] = {n: [] for n in range(len(claims))}
    if tx.get_bind().dialect.name == "postgresql":
        groups = values(
            column("n", Integer),
            column("endpoint_id", String),
            column("event_id", String),
            column("after", BigInteger),
            name="groups",
        ).data(
            [
                (n, c.endpoint_id, c.queue[-1].event_id, c.queue[-1].position)
                for n, c in enumerate(claims)
            ]
        )
        behind = (
            locks.claimed(
                _behind_query(groups.c.endpoint_id, groups.c.event_id, groups.c.after, now, follow)
            )
        ).lateral("behind")
        found = await tx.execute(
            select(groups.c.n, behind)
            .select_from(groups.join(behind, true()))
            .order_by(groups.c.n, behind.c.position)
        )
        for row in found:
            rows_of[int(row.n)].append(row)
    else:  # SQLite: one writer at a time and no round trips; a query per group
        for n, c in enumerate(claims):
            last = c.queue[-1]
            rows_of[n] = list(
                await tx.execute(
                    _behind_query(
                        literal(c.endpoint_id),
                        literal(last.event_id),
                        literal(last.position),
                        now,
                        follow,
                    )
                )
            )
    leased: list[Claimed | None] = []
    params: list[dict[str, Any]] = []
    for n, c in enumerate(claims):
        queue: list[Outgoing] = []
        for row in rows_of[n]:
            if row.next_attempt_at > now:
                break
            queue.append(_outgoing(row))
        if not queue:
            leased.append(None)
            continue
        token = secrets.token_hex(8)
        params += [{"delivery_id": d.id, "until": leased_until, "token": token} for d in queue]
        leased.append(replace(c, leased_until=leased_until, lease_token=token, queue=queue))
    if params:
        await tx.execute(_LEASED, params)
    return leased


def _behind_query(
    endpoint_id: ColumnElement[Any],
    event_id: ColumnElement[Any],
    after: ColumnElement[Any],
    now: datetime,
    follow: int,
) -> Select[*tuple[Any, ...]]:
    """A group's pending deliveries after a position that nobody holds, in order."""
    return (
        select(*_OUTGOING)
        .where(
            WebhookDelivery.endpoint_id == endpoint_id,
            WebhookDelivery.event_id == event_id,
            WebhookDelivery.status == DeliveryStatus.PENDING,
            WebhookDelivery.position > after,
            or_(WebhookDelivery.leased_until.is_(None), WebhookDelivery.leased_until < now),
            WebhookDelivery.endpoint_id.in_(_ENABLED),
        )
        .order_by(WebhookDelivery.position)
        .limit(follow)
    )


_LEASED = (
    update(WebhookDelivery.__table__)  # type: ignore[arg-type]
    .where(WebhookDelivery.__table__.c.id == bindparam("delivery_id"))
    .values(leased_until=bindparam("until"), lease_token=bindparam("token"))
)


_DELIVERED = (
    update(WebhookDelivery.__table__)  # type: ignore[arg-type]
    .where(WebhookDelivery.__table__.c.id == bindparam("delivery_id"))
    .values(
        status=DeliveryStatus.DELIVERED.value,
        delivered_at=bindparam("at"),
        attempts=WebhookDelivery.__table__.c.attempts + 1,
        last_attempt_at=bindparam("at"),
        last_status_code=bindparam("status_code"),
        last_error=None,
        last_response=bindparam("response"),
        leased_until=None,
        lease_token=None,
    )
)


def _snippet(response: str | None) -> str | None:
    return (response or "")[:RESPONSE_SNIPPET] or None


async def release(tx: AsyncSession, claimed: Claimed) -> None:
    """Give back what is still leased to `claimed` (what was not sent)."""
    await tx.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id.in_([d.id for d in claimed.queue]),
            WebhookDelivery.lease_token == claimed.lease_token,
        )
        .values(leased_until=None, lease_token=None)
        .execution_options(synchronize_session=False)
    )


async def _count_failure(tx: AsyncSession, endpoint_id: str, at: datetime, now: datetime) -> bool:
    """One more failure in a row; disables the endpoint once the rule says so. True when
    the endpoint is disabled now."""
    await tx.execute(
        update(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint_id)
        .values(
            failures_in_a_row=WebhookEndpoint.failures_in_a_row + 1,
            failing_since=func.coalesce(WebhookEndpoint.failing_since, at),
        )
        .execution_options(synchronize_session=False)
    )
    state = (
        await tx.execute(
            select(
                WebhookEndpoint.enabled,
                WebhookEndpoint.failing_since,
                WebhookEndpoint.failures_in_a_row,
            ).where(WebhookEndpoint.id == endpoint_id)
        )
    ).first()
    if state is None:
        return True  # deleted meanwhile: nothing to retry for
    enabled, failing_since, failures = state
    if not enabled:
        return True
    if failing_since is None or not rules.should_disable(failing_since, int(failures), now):
        return False
    await tx.execute(
        update(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint_id)
        .values(
            enabled=False,
            disabled_at=now,
            disabled_reason=(
                f"every attempt failed since {failing_since.isoformat()} ({int(failures)} in a row)"
            ),
        )
        .execution_options(synchronize_session=False)
    )
    return True


# The delivery log.


async def deliveries(
    tx: AsyncSession,
    endpoint_id: str,
    *,
    status: str | None,
    before: int | None,
    limit: int,
) -> Sequence[WebhookDelivery]:
    """Newest first (by change position), optionally of one status, before a position."""
    query = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    if before is not None:
        query = query.where(WebhookDelivery.position < before)
    return list(await tx.scalars(query.order_by(WebhookDelivery.position.desc()).limit(limit)))


async def redeliver(tx: AsyncSession, delivery_id: str, now: datetime) -> None:
    """Send again, whatever its status, with a fresh retry window and the same id."""
    await tx.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id)
        .values(status=DeliveryStatus.PENDING, next_attempt_at=now, retrying_since=now)
        .execution_options(synchronize_session=False)
    )


async def prune_log(tx: AsyncSession, *, older_than: datetime, batch: int) -> int:
    """Delete up to `batch` settled deliveries (delivered or failed) created before
    `older_than`; pending ones are kept whatever their age."""
    doomed = list(
        await tx.scalars(
            select(WebhookDelivery.id)
            .where(
                WebhookDelivery.status != DeliveryStatus.PENDING,
                WebhookDelivery.created_at < older_than,
            )
            .limit(batch)
        )
    )
    if doomed:
        await tx.execute(delete(WebhookDelivery).where(WebhookDelivery.id.in_(doomed)))
    return len(doomed)


async def pending_count(tx: AsyncSession, endpoint_ids: Collection[str]) -> dict[str, int]:
    """Pending deliveries per endpoint (the views show the backlog)."""
    if not endpoint_ids:
        return {}
    found = await tx.execute(
        select(WebhookDelivery.endpoint_id, func.count())
        .where(
            and_(
                WebhookDelivery.endpoint_id.in_(list(endpoint_ids)),
                WebhookDelivery.status == DeliveryStatus.PENDING,
            )
        )
        .group_by(WebhookDelivery.endpoint_id)
    )
    return {str(eid): int(n) for eid, n in found}
