"""A Redis restart without persistence during a queue (a private Redis, SQLite ledger):
the documented recovery. While Redis is down, queue calls are 503 and orders behind the
room are refused, never let through; afterwards the queue is empty, old passes are
refused (403, nobody holds a slot the store forgot), visitors rejoin with the same
ticket, and the active limit holds throughout."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from headcount.capacity import events, orders, tickets, waiting_rooms
from headcount.capacity.events import EventDraft
from headcount.capacity.orders import OrderDraft, OrderItemInput
from headcount.capacity.tickets import TicketTypeDraft
from headcount.capacity.waiting_rooms import WaitingRoomDraft
from headcount.config import Settings
from headcount.domain.errors import QueuePassRequired, ServiceUnavailable
from headcount.domain.queue import TicketState
from headcount.runtime import Runtime
from support import services
from support.auth import attendee, organizer
from support.private_services import PrivateRedis, private_redis, redis_available

ORG = organizer("org-queue-restart")
LIMIT = 3


@pytest.fixture
def redis_server() -> Iterator[PrivateRedis]:
    services.installed(redis_available(), "redis-server", "the restart test needs it")
    with private_redis() as server:
        yield server


async def test_a_redis_restart_without_persistence_loses_the_queue_not_the_limit(
    redis_server: PrivateRedis, sqlite_url: str
) -> None:
    rt = Runtime.from_settings(
        Settings(database_url=sqlite_url, env="test", redis_url=redis_server.url)
    )
    try:
        event = await events.create_event(rt, ORG, EventDraft(name="Restart"))
        tt = await tickets.create_ticket_type(
            rt, ORG, event.id, TicketTypeDraft(name="GA", quantity_total=100)
        )
        draft = WaitingRoomDraft(
            opens_at=datetime.now(UTC) - timedelta(seconds=1),
            active_limit=LIMIT,
            admit_per_minute=60_000,
        )
        await waiting_rooms.create_waiting_room(rt, ORG, event.id, draft)
        names = [f"r{i}" for i in range(10)]
        before = {n: await waiting_rooms.join_queue(rt, attendee(n), event.id) for n in names}
        admitted = [n for n, t in before.items() if t.state is TicketState.ADMITTED]
        assert len(admitted) == LIMIT

        def order(who: str) -> OrderDraft:
            return OrderDraft(
                event_id=event.id,
                items=[OrderItemInput(ticket_type_id=tt.id, quantity=1)],
                queue_pass=before[who].queue_pass,
            )

        redis_server.stop()
        with pytest.raises(ServiceUnavailable):
            await waiting_rooms.ticket_status(rt, before[names[5]].ticket)
        with pytest.raises(ServiceUnavailable):  # refused, not let through
            await orders.create_order(rt, attendee(admitted[0]), order(admitted[0]))
        redis_server.start()

        seen = await waiting_rooms.ticket_status(rt, before[names[5]].ticket)
        assert seen.state is TicketState.GONE  # the queue is gone with the data
        with pytest.raises(QueuePassRequired):  # so is every pass's slot
            await orders.create_order(rt, attendee(admitted[0]), order(admitted[0]))
        again = [await waiting_rooms.join_queue(rt, attendee(n), event.id) for n in names[5:]]
        assert [t.ticket for t in again] == [before[n].ticket for n in names[5:]]
        room = await waiting_rooms.get_waiting_room(rt, ORG, event.id)
        assert room.figures is not None
        assert room.figures.active_buyers == LIMIT
        assert room.figures.queued == len(names[5:]) - LIMIT
    finally:
        await rt.close()
