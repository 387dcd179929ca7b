"""Waiting rooms: a fair queue in front of a sale, shared by REST, GraphQL and WebSocket.

The ledger keeps each room's terms (`ledger/waiting_rooms.py`); the queue and the passes
live in the presence engine's store (`presence/queues.py`), whose atomic steps decide
every admission. This module turns them into use cases:

* organizers create a room, change its rate or limit live (`PATCH`), and read it with
  its live figures;
* visitors join (`join_queue`), read their ticket (`ticket_status`, also pushed by
  `WS /ws/queue/{ticket}`) and leave;
* `POST /orders` for ticket types behind a room asks `require_pass` first (403
  `queue_pass_required`), and `pass_used` frees the buyer's slot once the order is held;
* `pump`, run by every replica a few times a second, admits from each room's head and
  records the admissions, and watches the stock (twice a second): when it is gone
  (nothing left and no hold that may lapse), the queue is marked sold out, every
  process that notices wakes its queue sockets at once, and it reopens in the same
  order when stock comes back.

Rooms are read through a per-process copy at most `ROOM_MAX_AGE` old (the order path
must not pay a transaction for it); this process's own changes refresh it at once, other
processes see a new or changed room within that second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from headcount import origin
from headcount.capacity import keyed
from headcount.capacity.events import load_event
from headcount.capacity.inputs import Patch
from headcount.capacity.tickets import event_ticket_types
from headcount.capacity.views import QueueFiguresView, QueueTicketView, WaitingRoomView
from headcount.domain import queue as rules
from headcount.domain.changes import ChangeType
from headcount.domain.errors import (
    Conflict,
    Forbidden,
    HeadcountError,
    NotFound,
    QueuePassRequired,
    ServiceUnavailable,
)
from headcount.domain.identity import Principal
from headcount.domain.ids import is_well_formed, new_id
from headcount.domain.queue import QueueOrder, RoomStatus, RoomTerms, TicketState
from headcount.domain.tickets import OrderLine
from headcount.ledger import journal, rows
from headcount.ledger import waiting_rooms as ledger
from headcount.ledger.db import Tx
from headcount.ledger.waiting_rooms import WaitingRoom
from headcount.presence.queues import Admitted, Queues, queues_of
from headcount.recent import RecentReads
from headcount.runtime import Runtime

if TYPE_CHECKING:
    from headcount.capacity.orders import OrderDraft

log = logging.getLogger(__name__)

ROOM_MAX_AGE = 1.0  # seconds a process may act on its copy of a room's terms
PUMP_INTERVAL = 0.2  # seconds between admitting steps
STOCK_INTERVAL = 0.5  # seconds between sold-out checks of a room, in each process
MINUTE_MS = 60_000


class WaitingRoomDraft(BaseModel):
    model_config = ConfigDict(extra="forbid")

    opens_at: AwareDatetime
    active_limit: int = Field(ge=1, le=rules.MAX_ACTIVE_LIMIT, strict=True)
    admit_per_minute: int = Field(ge=1, le=rules.MAX_ADMIT_PER_MINUTE, strict=True)
    pass_ttl_seconds: int = Field(
        default=600, ge=rules.MIN_PASS_TTL, le=rules.MAX_PASS_TTL, strict=True
    )
    order: QueueOrder = QueueOrder.FIFO
    ticket_type_ids: list[str] | None = Field(default=None, min_length=1, max_length=100)


class WaitingRoomPatch(Patch):
    """What may change while visitors queue: the pace, the limit, the idle time, the
    opening. Lowering `active_limit` evicts nobody; it only slows admissions."""

    active_limit: int | None = Field(default=None, ge=1, le=rules.MAX_ACTIVE_LIMIT, strict=True)
    admit_per_minute: int | None = Field(
        default=None, ge=1, le=rules.MAX_ADMIT_PER_MINUTE, strict=True
    )
    pass_ttl_seconds: int | None = Field(
        default=None, ge=rules.MIN_PASS_TTL, le=rules.MAX_PASS_TTL, strict=True
    )
    opens_at: AwareDatetime | None = None

    NULLABLE: ClassVar[frozenset[str]] = frozenset()


@dataclass(frozen=True, slots=True)
class Room:
    """A room as this process acts on it."""

    id: str
    event_id: str
    ticket_type_ids: frozenset[str] | None
    terms: RoomTerms
    secret: str
    status: RoomStatus
    created_at: datetime
    updated_at: datetime
    opens_at: datetime

    @classmethod
    def of(cls, row: WaitingRoom) -> Room:
        return cls(
            id=row.id,
            event_id=row.event_id,
            ticket_type_ids=None if row.ticket_type_ids is None else frozenset(row.ticket_type_ids),
            terms=RoomTerms(
                room_id=row.id,
                opens_at_ms=rules.epoch_ms(row.opens_at),
                active_limit=row.active_limit,
                admit_per_minute=row.admit_per_minute,
                pass_ttl_ms=row.pass_ttl * 1000,
                order=QueueOrder(row.queue_order),
            ),
            secret=row.secret,
            status=RoomStatus(row.status),
            created_at=row.created_at,
            updated_at=row.updated_at,
            opens_at=row.opens_at,
        )

    def covers(self, ticket_type_ids: Sequence[str]) -> bool:
        types = self.ticket_type_ids
        return types is None or any(t in types for t in ticket_type_ids)

    def view(self, figures: QueueFiguresView | None = None) -> WaitingRoomView:
        return WaitingRoomView(
            id=self.id,
            event_id=self.event_id,
            ticket_type_ids=None if self.ticket_type_ids is None else sorted(self.ticket_type_ids),
            opens_at=self.opens_at,
            active_limit=self.terms.active_limit,
            admit_per_minute=self.terms.admit_per_minute,
            pass_ttl_seconds=self.terms.pass_ttl_ms // 1000,
            order=self.terms.order,
            status=self.status,
            created_at=self.created_at,
            updated_at=self.updated_at,
            figures=figures,
        )


class _Copies:
    """This process's copies: each event's room (None: the event has none), read once per
    `ROOM_MAX_AGE` however many sockets and orders ask at once (recent.py)."""

    def __init__(self) -> None:
        self.rooms: RecentReads[str, Room | None] = RecentReads(max_age=ROOM_MAX_AGE)
        self.every: tuple[float, list[Room]] | None = None
        self.stock_checked: dict[str, float] = {}
        # A whole-event room's ticket types, for sold-out tickets' waitlist pointer.
        self.event_types: RecentReads[str, list[str]] = RecentReads(max_age=ROOM_MAX_AGE)


def _copies(rt: Runtime) -> _Copies:
    found: _Copies | None = getattr(rt, "_waiting_rooms", None)
    if found is None:
        found = _Copies()
        setattr(rt, "_waiting_rooms", found)  # noqa: B010 - a per-runtime cache, not a field
    return found


def _forget(rt: Runtime, event_id: str) -> None:
    """This process changed the event's room: its next look reads the ledger."""
    copies = _copies(rt)
    copies.rooms.forget(event_id)
    copies.every = None


async def room_of(rt: Runtime, event_id: str) -> Room | None:
    """The event's room, from this process's copy when it is fresh enough."""
    if not is_well_formed(event_id):
        return None

    async def read() -> Room | None:
        async with rt.db.snapshot() as tx:
            row = await ledger.of_event(tx, event_id)
        return None if row is None else Room.of(row)

    return await _copies(rt).rooms.get(event_id, read)


def _queues(rt: Runtime) -> Queues:
    return queues_of(rt.presence)


# --- organizers ---------------------------------------------------------------------------


def _recorded(room: WaitingRoom) -> dict[str, Any]:
    return {
        "ticket_type_ids": room.ticket_type_ids,
        "opens_at": room.opens_at,
        "active_limit": room.active_limit,
        "admit_per_minute": room.admit_per_minute,
        "pass_ttl_seconds": room.pass_ttl,
        "order": room.queue_order,
    }


async def create_waiting_room(
    rt: Runtime,
    principal: Principal,
    event_id: str,
    draft: WaitingRoomDraft,
    *,
    idempotency_key: str | None = None,
) -> WaitingRoomView:
    async def work(tx: Tx) -> WaitingRoomView:
        event = await load_event(tx, event_id)
        if not principal.manages(event.organizer_id):
            raise Forbidden("only the event's organizer puts a waiting room in front of it")
        if await ledger.of_event(tx, event.id) is not None:
            raise Conflict("the event already has a waiting room; change it with PATCH")
        if draft.ticket_type_ids is not None:
            known = {t.id for t in await event_ticket_types(tx, event)}
            unknown = sorted(set(draft.ticket_type_ids) - known)
            if unknown:
                raise NotFound(f"no ticket type {unknown[0]!r} in this event")
        now = rt.clock()
        row = WaitingRoom(
            id=new_id("wr"),
            event_id=event.id,
            ticket_type_ids=None
            if draft.ticket_type_ids is None
            else sorted(set(draft.ticket_type_ids)),
            opens_at=draft.opens_at.astimezone(UTC),
            active_limit=draft.active_limit,
            admit_per_minute=draft.admit_per_minute,
            pass_ttl=draft.pass_ttl_seconds,
            queue_order=draft.order.value,
            status=RoomStatus.OPEN.value,
            secret=secrets.token_urlsafe(32),
            created_at=now,
            updated_at=now,
        )
        await rows.add(tx, row)
        return _recorded_view(tx, ChangeType.WAITING_ROOM_CREATED, row, before=None, at=now)

    payload = draft.model_dump(mode="json")
    return await _decide(
        rt, principal, event_id, step="create", payload=payload, key=idempotency_key, work=work
    )


async def update_waiting_room(
    rt: Runtime,
    principal: Principal,
    event_id: str,
    patch: WaitingRoomPatch,
    *,
    idempotency_key: str | None = None,
) -> WaitingRoomView:
    """Takes effect on the next admitting step of every process (within a second)."""

    async def work(tx: Tx) -> WaitingRoomView:
        row = await _own_room(tx, principal, event_id)
        before = _recorded(row)
        sent = patch.changes()
        now = rt.clock()
        if "active_limit" in sent:
            row.active_limit = sent["active_limit"]
        if "admit_per_minute" in sent:
            row.admit_per_minute = sent["admit_per_minute"]
        if "pass_ttl_seconds" in sent:
            row.pass_ttl = sent["pass_ttl_seconds"]
        if "opens_at" in sent:
            row.opens_at = sent["opens_at"].astimezone(UTC)
        row.updated_at = now
        await rows.save(tx)
        return _recorded_view(tx, ChangeType.WAITING_ROOM_CHANGED, row, before=before, at=now)

    payload = patch.model_dump(mode="json", exclude_unset=True)
    return await _decide(
        rt, principal, event_id, step="update", payload=payload, key=idempotency_key, work=work
    )


def _recorded_view(
    tx: Tx,
    kind: ChangeType,
    row: WaitingRoom,
    *,
    before: dict[str, Any] | None,
    at: datetime,
) -> WaitingRoomView:
    """The organizer's decision in the audit trail, and the room as it now stands."""
    journal.organizer(
        tx,
        kind,
        event_id=row.event_id,
        resource=("waiting_room", row.id),
        before=before,
        after=_recorded(row),
        at=at,
    )
    return Room.of(row).view()


async def _decide(
    rt: Runtime,
    principal: Principal,
    event_id: str,
    *,
    step: str,
    payload: dict[str, Any],
    key: str | None,
    work: Callable[[Tx], Awaitable[WaitingRoomView]],
) -> WaitingRoomView:
    """An organizer's change, once per Idempotency-Key; this process forgets its copy of
    the room at once (others within `ROOM_MAX_AGE`)."""
    view = await keyed.once(
        rt,
        principal,
        scope=f"waiting_rooms.{step}:{event_id}",
        key=key,
        payload=payload,
        answer=WaitingRoomView,
        work=work,
    )
    _forget(rt, event_id)
    return view


async def _own_room(tx: Tx, principal: Principal, event_id: str) -> WaitingRoom:
    event = await load_event(tx, event_id)
    if not principal.manages(event.organizer_id):
        raise Forbidden("only the event's organizer manages its waiting room")
    row = await ledger.of_event(tx, event.id)
    if row is None:
        raise NotFound(f"event {event_id!r} has no waiting room")
    return row


async def get_waiting_room(rt: Runtime, principal: Principal, event_id: str) -> WaitingRoomView:
    """The room with its live figures: queue length, admission rate, active buyers, wait."""
    async with rt.db.snapshot() as tx:
        room = Room.of(await _own_room(tx, principal, event_id))
    return room.view(await figures_of(rt, room))


async def figures_of(rt: Runtime, room: Room) -> QueueFiguresView:
    found = await _queues(rt).figures(room.terms)
    minute_ago = found.now_ms - MINUTE_MS
    waits = [waited for _, waited in found.recent[:500]]
    return QueueFiguresView(
        queued=found.queued,
        active_buyers=found.active,
        admitted_total=found.admitted_total,
        admitted_last_minute=sum(1 for at, _ in found.recent if at > minute_ago),
        median_wait_seconds=round(statistics.median(waits) / 1000, 3) if waits else None,
    )


async def waiting_room_of_event(rt: Runtime, event_id: str) -> WaitingRoomView | None:
    """For the capacity snapshot: the event's room and figures, or None."""
    room = await room_of(rt, event_id)
    if room is None:
        return None
    return room.view(await figures_of(rt, room))


# --- visitors -----------------------------------------------------------------------------


async def join_queue(rt: Runtime, principal: Principal, event_id: str) -> QueueTicketView:
    """Queue for the event's sale; joining again answers the same ticket and place."""
    room = await room_of(rt, event_id)
    if room is None:
        async with rt.db.snapshot() as tx:
            await load_event(tx, event_id)  # 404 for an unknown event
        raise NotFound(f"event {event_id!r} has no waiting room")
    queues = _queues(rt)
    await queues.join(room.terms, principal.sub, draw=secrets.randbelow(rules.LATE_BASE))
    # Admit at once when there is room: nobody waits a pump tick for an empty queue.
    await _admit(rt, room)
    return await _ticket_view(rt, room, principal.sub)


def _ticket(room: Room, visitor: str) -> str:
    return rules.ticket_of(room.secret, room.event_id, room.id, visitor)


async def _from_ticket(rt: Runtime, ticket: str) -> tuple[Room, str]:
    parts = rules.unsigned_parts(ticket, rules.TICKET_KIND, 3)
    room = None if parts is None else await room_of(rt, parts[0])
    if parts is None or room is None or parts[1] != room.id:
        raise NotFound("no such queue ticket")
    if rules.verified(room.secret, ticket, rules.TICKET_KIND, 3) is None:
        raise NotFound("no such queue ticket")
    return room, parts[2]


async def ticket_status(rt: Runtime, ticket: str) -> QueueTicketView:
    """The ticket's place now. The signed ticket is the credential (a browser's WebSocket
    cannot send a bearer token); the pass it reveals works only with its owner's token."""
    room, visitor = await _from_ticket(rt, ticket)
    return await _ticket_view(rt, room, visitor)


async def leave_queue(rt: Runtime, principal: Principal, ticket: str) -> QueueTicketView:
    """Give up the place, or the pass (abandoning frees the slot for the next person)."""
    room, visitor = await _from_ticket(rt, ticket)
    if visitor != principal.sub:
        raise NotFound("no such queue ticket")
    queues = _queues(rt)
    spot = await queues.look(room.terms, visitor)
    if spot.admission is not None:
        await queues.release(room.terms, visitor, spot.admission)
    else:
        await queues.leave(room.terms, visitor)
    return await _ticket_view(rt, room, visitor)


async def _ticket_view(rt: Runtime, room: Room, visitor: str) -> QueueTicketView:
    spot = await _queues(rt).look(room.terms, visitor)
    ahead = None if spot.position is None else spot.position - 1
    eta = None
    if spot.state is TicketState.WAITING and ahead is not None:
        opens_in = (room.terms.opens_at_ms - spot.now_ms) / 1000
        eta = rules.eta_seconds(ahead, room.terms.admit_per_minute, opens_in=opens_in)
    admitted = spot.state is TicketState.ADMITTED and spot.admission is not None
    return QueueTicketView(
        ticket=_ticket(room, visitor),
        room_id=room.id,
        event_id=room.event_id,
        state=spot.state,
        position=spot.position,
        people_ahead=ahead,
        queued=spot.queued,
        eta_seconds=eta,
        queue_pass=rules.pass_of(room.secret, room.id, visitor, spot.admission)
        if admitted and spot.admission is not None
        else None,
        pass_expires_at=datetime.fromtimestamp(spot.expires_ms / 1000, UTC)
        if admitted and spot.expires_ms is not None
        else None,
        waitlist_ticket_type_ids=None
        if spot.state is not TicketState.SOLD_OUT
        else await _waitlist_types(rt, room),
    )


async def _waitlist_types(rt: Runtime, room: Room) -> list[str]:
    """Where a sold-out visitor may queue instead: the room's ticket types' waitlists."""
    if room.ticket_type_ids is not None:
        return sorted(room.ticket_type_ids)

    async def read() -> list[str]:
        async with rt.db.snapshot() as tx:
            event = await load_event(tx, room.event_id)
            return sorted(t.id for t in await event_ticket_types(tx, event))

    return await _copies(rt).event_types.get(room.event_id, read)


# --- the order gate ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PassHeld:
    room: Room
    visitor: str
    admission: str


async def require_pass(
    rt: Runtime, principal: Principal, draft: OrderDraft, lines: Sequence[OrderLine]
) -> PassHeld | None:
    """Refuse (403 `queue_pass_required`) an order for ticket types behind a room unless
    it carries the caller's live pass for that room; renews the pass (activity).

    The store checks the pass's admission number, so a forged pass, an expired or used
    one, another visitor's or another room's fails alike. Two orders with one pass at
    once both pass here, but a pass is one slot: they cannot raise the active count.
    """
    room = await room_of(rt, draft.event_id)
    if room is None or not room.covers([line.ticket_type_id for line in lines]):
        return None
    queue_pass = draft.queue_pass
    refused = QueuePassRequired(
        "these tickets are sold through a waiting room: queue, then order with your pass",
        room_id=room.id,
    )
    if queue_pass is None:
        raise refused
    parts = rules.verified(room.secret, queue_pass, rules.PASS_KIND, 3)
    if parts is None or parts[0] != room.id or parts[1] != principal.sub:
        raise refused
    if await _queues(rt).touch(room.terms, principal.sub, parts[2]) is None:
        raise refused
    return PassHeld(room, principal.sub, parts[2])


async def pass_used(rt: Runtime, held: PassHeld | None) -> None:
    """The order is held: the buyer leaves the shop and the slot goes to the next person.
    If the store is unreachable now, the pass lapses by itself after `pass_ttl`."""
    if held is None:
        return
    with contextlib.suppress(ServiceUnavailable):
        await _queues(rt).release(held.room.terms, held.visitor, held.admission)


# --- the pump -----------------------------------------------------------------------------


async def _every_room(rt: Runtime) -> list[Room]:
    copies = _copies(rt)
    if copies.every is not None and time.monotonic() - copies.every[0] < ROOM_MAX_AGE:
        return copies.every[1]
    async with rt.db.snapshot() as tx:
        found = [Room.of(row) for row in await ledger.every(tx)]
    copies.every = (time.monotonic(), found)
    return found


async def _admit(rt: Runtime, room: Room) -> list[Admitted]:
    """One admitting step of `room`, recorded in the change log when it admitted anyone.

    The store decides and the ledger records after: a process killed between them admits
    the visitors (their pass works) but leaves this step's change unrecorded.
    """
    if room.status is RoomStatus.SOLD_OUT:
        return []
    admitted = await _queues(rt).admit(room.terms)
    if admitted:
        async with rt.db.transaction() as tx:
            journal.queue(
                tx,
                ChangeType.QUEUE_ADMITTED,
                room_id=room.id,
                event_id=room.event_id,
                figures={"admitted": [_admission(a) for a in admitted]},
                at=rt.clock(),
            )
    return admitted


def _admission(admitted: Admitted) -> dict[str, Any]:
    return {
        "visitor_id": admitted.visitor,
        "admission": admitted.admission,
        "waited_ms": admitted.waited_ms,
    }


async def _stock_gone(tx: Tx, room: Room) -> bool:
    """Nothing left to sell and no hold that may lapse, over the room's ticket types."""
    event = await load_event(tx, room.event_id)
    covered = [
        t
        for t in await event_ticket_types(tx, event)
        if room.ticket_type_ids is None or t.id in room.ticket_type_ids
    ]
    return bool(covered) and all(
        t.quantity_available <= 0 and t.quantity_reserved <= 0 for t in covered
    )


async def _watch_stock(rt: Runtime, room: Room) -> Room:
    """Mark the room sold out when its stock is gone, open again when stock returns; the
    conditional status UPDATE lets exactly one replica record each turn."""
    async with rt.db.transaction() as tx:
        gone = await _stock_gone(tx, room)
        row = await ledger.of_event(tx, room.event_id)
        if row is None:
            return room
        status = RoomStatus(row.status)
        wanted = RoomStatus.SOLD_OUT if gone else RoomStatus.OPEN
        if wanted is not status:
            now = rt.clock()
            if await ledger.set_status(tx, row.id, was=status.value, now=wanted.value, at=now):
                queued = (await _queues(rt).figures(room.terms)).queued
                kind = ChangeType.QUEUE_SOLD_OUT if gone else ChangeType.QUEUE_REOPENED
                journal.queue(
                    tx,
                    kind,
                    room_id=row.id,
                    event_id=row.event_id,
                    figures={"queued": queued},
                    at=now,
                )
                status = wanted
    # The store follows the ledger (every replica sets it; setting it again is harmless).
    await _queues(rt).set_status(room.terms, status)
    if status is not room.status:
        _forget(rt, room.event_id)
        # This process's queue sockets (and capacity channels) look again at once.
        rt.signals.notify(room.event_id)
    return Room(**{**_fields(room), "status": status})


def _fields(room: Room) -> dict[str, Any]:
    return {name: getattr(room, name) for name in Room.__slots__}


async def pump(rt: Runtime, *, stock_every: float = STOCK_INTERVAL) -> int:
    """One round over every room: watch its stock (every `stock_every` seconds), admit
    from its head. Safe in every replica at once: each step is atomic in the store.
    Returns how many it admitted."""
    copies = _copies(rt)
    total = 0
    for room in await _every_room(rt):
        now = time.monotonic()
        current = room
        if now - copies.stock_checked.get(room.id, 0.0) >= stock_every:
            copies.stock_checked[room.id] = now
            current = await _watch_stock(rt, room)
        total += len(await _admit(rt, current))
    return total


async def run(rt: Runtime, *, interval: float = PUMP_INTERVAL) -> None:
    """The pump's loop, one per process (api/app.py starts it)."""
    origin.as_system()
    while True:
        try:
            await pump(rt)
        except HeadcountError as exc:
            log.warning("waiting-room pump: %s", exc.detail)
        except Exception:
            log.exception("waiting-room pump failed")
        await asyncio.sleep(interval)
