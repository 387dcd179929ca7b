"""Queueing for a full live space (`?queue=1`): the stream, a booth or a breakout room.

A visitor who asks to queue and finds the space full (or others already queued) waits in
a FIFO queue of the same store as the waiting rooms (`presence/queues.py`, one per
space, hash tag `{wr.<kind>.<id>}`). Only the head tries to take a place, with the same
atomic admission as any join (`live.join`), so places freed by leases go to the queue in
arrival order. A waiting socket marks itself seen on every look; one that leaves or
drops leaves the queue at once (`leave`), and one whose process died stops being seen
and is dropped when it reaches the head (`prune`), so a dead socket never holds the
queue up. Over REST the caller's asks are the looks (`ask_in_line`): a caller who stops
asking is dropped the same way, and `DELETE …/line` leaves at once. Plain joins
(without `?queue=1`) still take a free place directly: the queue orders those who asked
to wait.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from headcount.capacity import live
from headcount.capacity.spaces import Space
from headcount.capacity.views import LeaseView, PlaceInLine
from headcount.domain.identity import Principal
from headcount.domain.queue import QueueOrder, RoomTerms, TicketState
from headcount.presence.queues import queues_of
from headcount.runtime import Runtime

LOOK_INTERVAL = 0.5  # seconds between a waiting socket's looks (and tries, at the head)
STALE_MS = 5_000  # a waiting socket (or REST caller) not seen for this long has gone
ASK_AGAIN = 1.0  # seconds a REST caller in line is told to wait before asking again

# Told each time the place is looked at: (position, people queued).
OnPlace = Callable[[int, int], Awaitable[None]]


def _terms(space: Space[Any], place_id: str) -> RoomTerms:
    """A live space's queue: FIFO, always open; the space's own limit decides who gets
    in, so the store's active set, rate and passes are not used."""
    return RoomTerms(
        room_id=f"{space.kind}.{place_id}",
        opens_at_ms=0,
        active_limit=1,
        admit_per_minute=1,
        pass_ttl_ms=1_000,
        order=QueueOrder.FIFO,
    )


async def join_in_line(
    rt: Runtime,
    principal: Principal,
    space: Space[Any],
    place_id: str,
    on_place: OnPlace,
    *,
    interval: float = LOOK_INTERVAL,
) -> LeaseView:
    """A lease on the space, at once if it has room and nobody waits, else after waiting
    in line. Cancelling the waiting (the socket went away) gives up the place in line;
    any refusal other than "full" (closed, not found, not allowed) is raised."""
    terms = _terms(space, place_id)
    queues = queues_of(rt.presence)
    if (await queues.figures(terms)).queued == 0:
        try:
            return await live.join(rt, principal, space, place_id)
        except space.refusal.error:
            pass  # full: wait in line
    try:
        await queues.join(terms, principal.sub, draw=0, live=True)
        while True:
            await queues.prune(terms, stale_ms=STALE_MS)
            spot = await queues.look(terms, principal.sub, live=True)
            if spot.state is TicketState.GONE:  # dropped as stale (a long stall): back in
                spot = await queues.join(terms, principal.sub, draw=0, live=True)
            if spot.position == 1:
                try:
                    return await live.join(rt, principal, space, place_id)
                except space.refusal.error:
                    pass  # still full: keep the head of the line
            await on_place(spot.position or 1, spot.queued)
            await asyncio.sleep(interval)
    finally:
        await asyncio.shield(queues.leave(terms, principal.sub))


async def ask_in_line(
    rt: Runtime,
    principal: Principal,
    space: Space[Any],
    place_id: str,
    *,
    idempotency_key: str | None = None,
) -> LeaseView | PlaceInLine:
    """One ask of a caller waiting over REST: a lease if there is room and nobody waits
    (or the caller is at the head and a place is free), else the caller's place in line,
    taken on the first ask and kept by each ask. A refusal other than "full" (closed,
    not found) leaves the line and is raised."""
    terms = _terms(space, place_id)
    queues = queues_of(rt.presence)
    try:
        spot = await queues.look(terms, principal.sub, live=True)
        if spot.state is not TicketState.WAITING:  # a first ask, or dropped as stale
            if (await queues.figures(terms)).queued == 0:
                try:
                    return await live.join(
                        rt, principal, space, place_id, idempotency_key=idempotency_key
                    )
                except space.refusal.error:
                    pass  # full: take a place in line
            await queues.join(terms, principal.sub, draw=0, live=True)
        await queues.prune(terms, stale_ms=STALE_MS)
        spot = await queues.look(terms, principal.sub, live=True)
        if spot.position == 1:
            try:
                lease = await live.join(
                    rt, principal, space, place_id, idempotency_key=idempotency_key
                )
            except space.refusal.error:
                pass  # still full: keep the head of the line
            else:
                await queues.leave(terms, principal.sub)
                return lease
    except BaseException:
        await asyncio.shield(queues.leave(terms, principal.sub))
        raise
    return PlaceInLine(
        kind=space.kind,
        resource_id=place_id,
        position=spot.position or 1,
        queued=spot.queued,
        retry_after_seconds=ASK_AGAIN,
        stale_after_seconds=STALE_MS / 1000,
    )


async def leave_line(rt: Runtime, principal: Principal, space: Space[Any], place_id: str) -> bool:
    """Give up the caller's place in line (REST); whether they had one. NotFound for a
    place that does not exist."""
    await live.must_exist(rt, space, place_id)
    return await queues_of(rt.presence).leave(_terms(space, place_id), principal.sub)
