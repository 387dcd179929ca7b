"""`WS /ws/events/{event_id}/capacity`: the event's capacity snapshot, pushed on change.

Server → `{"type": "snapshot", "snapshot": {…}}` on connect, then again whenever any
figure changes (the `taken_at`, `as_of` and `replica_lag_ms` stamps alone do not count).
Changes are noticed every `interval` seconds (default 1, query `?interval=` between 0.25
and 30), and at once when this process admits, releases or resizes something of the
event. The polling is what makes it work across processes: the snapshot is read from the
shared database and Redis, so a change made through any replica is pushed within one
interval. No pub/sub to lose messages or to resubscribe after a Redis restart.

The sockets do not poll one by one: all sockets of an event (and interval) in a process
share one feed, and the feeds of all processes share each computed snapshot through
Redis (capacity/feeds.py), so 10,000 watchers cost one snapshot per change or tick.
"""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import APIRouter
from starlette.websockets import WebSocket, WebSocketDisconnect

from headcount.api.realtime import refuse, runtime_of
from headcount.capacity.feeds import Feed, Feeds, Message, first_message
from headcount.domain.errors import HeadcountError, InvalidRequest

router = APIRouter()
DEFAULT_INTERVAL = 1.0
MIN_INTERVAL, MAX_INTERVAL = 0.25, 30.0


def interval_of(raw: str | None, default: float = DEFAULT_INTERVAL) -> float:
    """`?interval=` seconds between reads, bounded (shared by the queue socket)."""
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not MIN_INTERVAL <= value <= MAX_INTERVAL:
        raise InvalidRequest(
            f"interval must be a number of seconds in [{MIN_INTERVAL}, {MAX_INTERVAL}]"
        )
    return value


async def drain(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends, so a disconnect is noticed at once."""
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass


def feeds_of(websocket: WebSocket) -> Feeds:
    """This process's feeds (one registry per application, made on first use)."""
    state = websocket.app.state
    found: Feeds | None = getattr(state, "capacity_feeds", None)
    if found is None:
        found = state.capacity_feeds = Feeds(runtime_of(websocket))
    return found


@router.websocket("/ws/events/{event_id}/capacity")
async def capacity(websocket: WebSocket, event_id: str) -> None:
    await websocket.accept()
    try:
        interval = interval_of(websocket.query_params.get("interval"))
    except HeadcountError as exc:
        await refuse(websocket, exc)
        return
    feeds = feeds_of(websocket)
    feed = feeds.watch(event_id, interval)
    reader: asyncio.Task[None] | None = None
    try:
        first = await first_message(feed)
        if first.error is not None and first.snapshot is None:
            await refuse(websocket, first.error)
            return
        await websocket.send_text(first.text)
        reader = asyncio.create_task(drain(websocket))
        await _push_changes(websocket, feed, sent=first, reader=reader)
    except (WebSocketDisconnect, OSError, RuntimeError):
        pass  # the dashboard went away mid-send
    finally:
        feeds.leave(feed)
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader


async def _push_changes(
    websocket: WebSocket, feed: Feed, *, sent: Message, reader: asyncio.Task[None]
) -> None:
    """Send each message the feed publishes (the latest, if several came meanwhile)."""
    while not reader.done():
        if feed.latest is sent:
            changed = asyncio.create_task(feed.changed().wait())
            await asyncio.wait({reader, changed}, return_when=asyncio.FIRST_COMPLETED)
            changed.cancel()
            continue
        sent = feed.latest if feed.latest is not None else sent
        await websocket.send_text(sent.text)
