"""The waiting rooms' pump: every process, a few times a second, takes one admitting step
per room and, twice a second, checks the room's stock.

Running it in every replica at once is safe: each admitting step is one atomic script in
the store, and the room's status moves through a conditional UPDATE that exactly one
replica wins (`ledger/waiting_rooms.set_status`). When the stock is gone (nothing left and
no hold that may lapse), the room is marked sold out, every process that notices wakes
its queue sockets at once (`rt.signals`), and it reopens in the same order when stock
comes back.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from typing import Any

from headcount import origin
from headcount.capacity.events import load_event
from headcount.capacity.tickets import event_ticket_types
from headcount.capacity.waiting_room_copies import Room, copies, every_room, forget, queues
from headcount.domain.changes import ChangeType
from headcount.domain.errors import HeadcountError
from headcount.domain.queue import RoomStatus
from headcount.ledger import allotments, draws, inventory, journal
from headcount.ledger import waiting_rooms as ledger
from headcount.ledger.db import Tx
from headcount.presence.queues import Admitted
from headcount.runtime import Runtime

log = logging.getLogger(__name__)

PUMP_INTERVAL = 0.2  # seconds between admitting steps
STOCK_INTERVAL = 0.5  # seconds between sold-out checks of a room, in each process


async def admit(rt: Runtime, room: Room) -> list[Admitted]:
    """One admitting step of `room`, recorded in the change log when it admitted anyone.

    The store decides and the ledger records after: a process killed between them admits
    the visitors (their pass works) but leaves this step's change unrecorded.
    """
    if room.status is RoomStatus.SOLD_OUT:
        return []
    admitted = await queues(rt).admit(room.terms)
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
    """Not one ticket of the room's types can be held now — by their own stock, their
    pools or the event's cap (`inventory.no_room_at_all`) — and no hold that may lapse
    could free room for them: none on the types themselves, on a type sharing one of
    their pools, or, when the event has a cap, on any type of the event — nor on one of
    their pools (with a cap: any pool of the event). Organizer holds without a release
    time do not lapse (their release reopens the room like a refund)."""
    event = await load_event(tx, room.event_id)
    types = await event_ticket_types(tx, event)
    covered = [t.id for t in types if room.ticket_type_ids is None or t.id in room.ticket_type_ids]
    if not covered:
        return False
    for tid in covered:
        if not await inventory.no_room_at_all(tx, tid, event_id=event.id):
            return False
    if event.max_attendees is not None:
        sharing = {t.id for t in types}
        pool_ids: set[str] | None = None
    else:
        pools = await draws.pool_ids_of(tx, covered)
        pool_ids = {p for ids in pools.values() for p in ids}
        pooled = await draws.members(tx, pool_ids)
        sharing = {*covered, *(tid for ids in pooled.values() for tid in ids)}
    if await allotments.lapsing_in_pools(tx, event.id, pool_ids):
        return False  # a hold on a shared pool (or, with a cap, any pool) may lapse
    lasting = await allotments.held(tx, sharing, lasting=True)
    reserved = {t.id: t.quantity_reserved for t in types}
    return all(reserved.get(tid, 0) - lasting.get(tid, 0) <= 0 for tid in sharing)


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
                queued = (await queues(rt).figures(room.terms)).queued
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
    await queues(rt).set_status(room.terms, status)
    if status is not room.status:
        forget(rt, room.event_id)
        # This process's queue sockets (and capacity channels) look again at once.
        rt.signals.notify(room.event_id)
    return dataclasses.replace(room, status=status)


async def pump(rt: Runtime, *, stock_every: float = STOCK_INTERVAL) -> int:
    """One round over every room: watch its stock (every `stock_every` seconds), admit
    from its head. Safe in every replica at once: each step is atomic in the store.
    Returns how many it admitted."""
    checked = copies(rt).stock_checked
    total = 0
    for room in await every_room(rt):
        now = time.monotonic()
        current = room
        if now - checked.get(room.id, 0.0) >= stock_every:
            checked[room.id] = now
            current = await _watch_stock(rt, room)
        total += len(await admit(rt, current))
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
