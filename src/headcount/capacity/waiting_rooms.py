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
* the pump (`queue_pump.py`), run by every replica a few times a second, admits from
  each room's head, records the admissions and watches the stock.

Rooms are read through a per-process copy (`waiting_room_copies.py`) at most a second
old: the order path must not pay a transaction for it.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import statistics
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from headcount.capacity import keyed, queue_pump
from headcount.capacity.events import load_event
from headcount.capacity.inputs import Patch
from headcount.capacity.tickets import event_ticket_types
from headcount.capacity.views import QueueFiguresView, QueueTicketView, WaitingRoomView
from headcount.capacity.waiting_room_copies import Room, copies, forget, queues, room_of
from headcount.domain import queue as rules
from headcount.domain.changes import ChangeType
from headcount.domain.errors import (
    Conflict,
    Forbidden,
    NotFound,
    QueuePassRequired,
    ServiceUnavailable,
)
from headcount.domain.identity import Principal
from headcount.domain.ids import new_id
from headcount.domain.queue import QueueOrder, RoomStatus, TicketState
from headcount.domain.tickets import OrderLine
from headcount.ledger import journal, rows
from headcount.ledger import waiting_rooms as ledger
from headcount.ledger.db import Tx
from headcount.ledger.waiting_rooms import WaitingRoom
from headcount.runtime import Runtime

if TYPE_CHECKING:
    from headcount.capacity.orders import OrderDraft

log = logging.getLogger(__name__)

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
    forget(rt, event_id)
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
    found = await queues(rt).figures(room.terms)
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
    store = queues(rt)
    await store.join(room.terms, principal.sub, draw=secrets.randbelow(rules.LATE_BASE))
    # Admit at once when there is room: nobody waits a pump tick for an empty queue.
    await queue_pump.admit(rt, room)
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
    store = queues(rt)
    spot = await store.look(room.terms, visitor)
    if spot.admission is not None:
        await store.release(room.terms, visitor, spot.admission)
    else:
        await store.leave(room.terms, visitor)
    return await _ticket_view(rt, room, visitor)


async def _ticket_view(rt: Runtime, room: Room, visitor: str) -> QueueTicketView:
    spot = await queues(rt).look(room.terms, visitor)
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

    return await copies(rt).event_types.get(room.event_id, read)


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
    if await queues(rt).touch(room.terms, principal.sub, parts[2]) is None:
        raise refused
    return PassHeld(room, principal.sub, parts[2])


async def pass_used(rt: Runtime, held: PassHeld | None) -> None:
    """The order is held: the buyer leaves the shop and the slot goes to the next person.
    If the store is unreachable now, the pass lapses by itself after `pass_ttl`."""
    if held is None:
        return
    with contextlib.suppress(ServiceUnavailable):
        await queues(rt).release(held.room.terms, held.visitor, held.admission)
