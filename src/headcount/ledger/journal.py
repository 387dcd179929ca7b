"""What each decision writes in the change log: one function per shape of change.

Payload shapes are a public contract (docs/changes.md): integrators read them without
calling back, and `reconcile` replays them (domain/replay.py), so each shape is written
once, here, and every path that makes that decision calls the same function. Values are
JSON: times as RFC 3339 strings, enums as their values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from headcount import origin
from headcount.domain.changes import ChangeType
from headcount.ledger import changes
from headcount.ledger.attendance import WaitlistEntry
from headcount.ledger.spaces import Huddle
from headcount.ledger.venue import Scan


def stamp(tx: AsyncSession, at: datetime) -> None:
    """The unit of work's decision time, for thresholds its statements record."""
    changes.stamp(tx, at)


# A resource as the change log names it: (kind, id), e.g. ("ticket_type", "tt_…").
Resource = tuple[str, str]

_AS_IS = frozenset({str, int, float, bool, type(None)})


def plain(value: Any) -> Any:
    """A value as the JSON payload holds it."""
    if type(value) in _AS_IS:  # most values, on every order's path: no isinstance chain
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def order(
    tx: AsyncSession,
    type_: ChangeType,
    *,
    order_id: str,
    event_id: str,
    owner_id: str,
    status: str,
    previous_status: str | None,
    items: Sequence[Mapping[str, Any]],
    at: datetime,
    by: origin.Origin | None = None,
    **extra: Any,
) -> changes.Pending | None:
    """An order's step; `items` are `{ticket_type_id, quantity}` (plus what a step adds).

    Returns what was recorded: it is written at COMMIT (or by the statement it rides in),
    so what the transaction learns later may still be filled in.
    """
    payload = {
        "order_id": order_id,
        "owner_id": owner_id,
        "status": status,
        "previous_status": previous_status,
        "items": [plain(item) for item in items],
        **plain(extra),
    }
    return changes.record(
        tx, type_, event_id=event_id, resource=("order", order_id), payload=payload, at=at, by=by
    )


def allotment(
    tx: AsyncSession,
    type_: ChangeType,
    *,
    hold_id: str,
    event_id: str,
    name: str,
    ticket_type_id: str | None,
    moved: int,
    remaining: int,
    at: datetime,
    by: origin.Origin | None = None,
    pool_id: str | None = None,
    **extra: Any,
) -> None:
    """An organizer hold's step: `moved` units made, split off, released or redeemed, and
    the hold's `remaining` units after it. `items` carries the units replay folds; a hold
    on a pool has none (no type holds them) and names its `pool_id`, which replay folds."""
    items = [{"ticket_type_id": ticket_type_id, "quantity": moved}] if ticket_type_id else []
    target: dict[str, str | None] = {"ticket_type_id": ticket_type_id}
    if pool_id is not None:
        target["pool_id"] = pool_id
    payload = {
        "name": name,
        **target,
        "quantity": moved,
        "remaining": remaining,
        "items": items,
        **plain(extra),
    }
    hold = ("organizer_hold", hold_id)
    _about(tx, type_, hold, payload, event_id=event_id, at=at, by=by, named="hold_id")


def entry(
    tx: AsyncSession,
    type_: ChangeType,
    found: WaitlistEntry,
    at: datetime,
    *,
    by: origin.Origin | None = None,
    **extra: Any,
) -> None:
    """A waitlist entry's step (or an RSVP that became one), as the entry now stands."""
    payload: dict[str, Any] = {
        "attendee_id": found.attendee_id,
        "seq": found.seq,
        "quantity": found.quantity,
        "status": found.status,
    }
    if found.session_id is not None:
        payload["session_id"] = found.session_id
    else:
        payload["ticket_type_id"] = found.ticket_type_id
        payload["offered_quantity"] = found.offered_quantity
        payload["offer_expires_at"] = plain(found.offer_expires_at)
        payload["order_id"] = found.order_id
    payload.update(plain(extra))
    waitlist_entry = ("waitlist_entry", found.id)
    _about(
        tx, type_, waitlist_entry, payload, event_id=found.event_id, at=at, by=by, named="entry_id"
    )


def seat(
    tx: AsyncSession,
    type_: ChangeType,
    *,
    event_id: str,
    session_id: str,
    attendee_id: str,
    via: str,
    attendance: int | None,
    at: datetime,
) -> None:
    """A session seat taken or given up (`rsvp.confirmed`, `rsvp.cancelled`)."""
    seated = {"attendee_id": attendee_id, "via": via, "current_attendance": attendance}
    _about(tx, type_, ("session", session_id), seated, event_id=event_id, at=at)


def registration(
    tx: AsyncSession,
    type_: ChangeType,
    *,
    registration_id: str,
    event_id: str,
    attendee_id: str,
    party_size: int,
    status: str,
    at: datetime,
    **extra: Any,
) -> None:
    told = {"attendee_id": attendee_id, "party_size": party_size, "status": status}
    registered = ("registration", registration_id)
    _about(tx, type_, registered, {**told, **plain(extra)}, event_id=event_id, at=at)


def scan(
    tx: AsyncSession,
    type_: ChangeType,
    found: Scan,
    moves: Mapping[str, int],
    position: str | None,
) -> None:
    """A stored scan (`area.*`): `moves` are the occupancy deltas per area it caused, which
    replay folds; `position` is the credential's area after it (None: outside)."""
    told = {name: getattr(found, name) for name in _SCAN_FIELDS}
    kept = {"scanned_at": plain(found.scanned_at), "position": position}
    moved = dict(sorted(moves.items()))
    area = ("area", found.area_id)
    payload = {**told, **kept, "moves": moved}
    _about(tx, type_, area, payload, event_id=found.event_id, at=found.recorded_at)


_SCAN_FIELDS = ("scan_id", "credential", "direction", "source", "outcome")


def membership(
    tx: AsyncSession, type_: ChangeType, huddle: Huddle, user_id: str, at: datetime
) -> None:
    """A huddle joined or left, as the row stands right after (`members` counts them)."""
    joined = {"user_id": user_id, "members": huddle.members}
    _about(tx, type_, ("huddle", huddle.id), joined, event_id=huddle.event_id, at=at)


def _about(
    tx: AsyncSession,
    type_: str,
    resource: Resource,
    payload: Mapping[str, Any],
    *,
    event_id: str,
    at: datetime,
    by: origin.Origin | None = None,
    named: str | None = None,
) -> None:
    """A change about one resource, whose payload names it first as `<kind>_id` (the
    contract integrators key on; `named` where the contract spells it shorter, as
    `hold_id`), then says what happened to it."""
    kind, id_ = resource
    told = {named or _id_field(kind): id_, **payload}
    changes.record(tx, type_, event_id=event_id, resource=resource, payload=told, at=at, by=by)


def audit(
    tx: AsyncSession,
    type_: str,
    subject: tuple[str, Any],
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any],
    *,
    at: datetime,
) -> None:
    """`organizer` for a subject given as (kind, its row or view): the resource and its
    event are read off it the one way (an event is its own), not spelled at each call."""
    kind, row = subject
    event_id: str = row.id if kind == "event" else row.event_id
    organizer(
        tx, type_, event_id=event_id, resource=(kind, row.id), before=before, after=after, at=at
    )


def organizer(
    tx: AsyncSession,
    type_: str,
    *,
    event_id: str,
    resource: Resource,
    at: datetime,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any],
) -> None:
    """An organizer made (`before` None) or changed something: the audit trail's rows.

    A change records only the fields whose value moved; nothing moved, nothing recorded.
    """
    if before is not None:
        moved = sorted(k for k in after if plain(after[k]) != plain(before.get(k)))
        if not moved:
            return
        before, after = {k: before.get(k) for k in moved}, {k: after[k] for k in moved}
    told = {"before": None if before is None else plain(before), "after": plain(after)}
    _about(tx, type_, resource, told, event_id=event_id, at=at)


def queue(
    tx: AsyncSession,
    type_: ChangeType,
    *,
    room_id: str,
    event_id: str,
    figures: Mapping[str, Any],
    at: datetime,
) -> None:
    """A waiting room's queue moved: admitted, sold out or reopened (docs/changes.md)."""
    room = ("waiting_room", room_id)
    _about(tx, type_, room, plain(figures), event_id=event_id, at=at, named="room_id")


def _id_field(kind: str) -> str:
    """The payload field naming a resource of `kind` (an event names itself `event_id`)."""
    return "event_id" if kind == "event" else f"{kind}_id"


def full(used: int, limit: int | None) -> bool:
    """A limited capacity is full (sold out, exhausted) once use reaches its limit."""
    return limit is not None and used >= limit


def limit_moved(
    tx: AsyncSession,
    types: tuple[ChangeType, ChangeType],
    *,
    event_id: str,
    resource: Resource,
    was_full: bool,
    figures: Mapping[str, Any],
    is_full: bool,
) -> None:
    """Record `types[0]` (became full) or `types[1]` (has room again) if fullness moved."""
    if was_full != is_full:
        # Once per transition (`changes.crossed`), at the unit of work's decision time.
        payload = {_id_field(resource[0]): resource[1], **plain(figures)}
        changes.crossed(tx, types[0] if is_full else types[1], resource, event_id, payload)


SOLD_OUT = (ChangeType.TICKET_TYPE_SOLD_OUT, ChangeType.TICKET_TYPE_BACK_IN_STOCK)
POOL = (ChangeType.POOL_EXHAUSTED, ChangeType.POOL_REPLENISHED)
EVENT = (ChangeType.EVENT_FULL, ChangeType.EVENT_REOPENED)
SESSION = (ChangeType.SESSION_FULL, ChangeType.SESSION_REOPENED)


def stock_moved(
    tx: AsyncSession, ticket_type_id: str, event_id: str, *, available: int, delta: int
) -> None:
    """A ticket type's own stock moved by `delta` (negative: taken) to `available`."""
    limit_moved(
        tx,
        SOLD_OUT,
        event_id=event_id,
        resource=("ticket_type", ticket_type_id),
        was_full=available - delta <= 0,
        figures={"available": max(0, available)},
        is_full=available <= 0,
    )
