"""`WS /ws/queue/{ticket}`: a visitor's place in a waiting room, pushed as it moves.

Server → `{"type": "ticket", "ticket": {…QueueTicket…}}` on connect and whenever the
place changes (position, state, the pass, its expiry), then closes normally once the
ticket is `gone` (left, or the pass was used or lapsed). A sold-out room is pushed as
`state: "sold_out"` with the ticket types whose waitlist the visitor may join; if stock
comes back the same socket shows the place again.

Each socket reads its ticket from the shared store every `interval` seconds (default
0.5, `?interval=` between 0.25 and 30), and at once when this process sees the room sell
out or reopen (`rt.signals`): a lookup is O(log n) in the store, and reading rather than
subscribing means a place moved by any process, or a Redis restart, is seen within one
interval without resubscribing. The signed ticket is the credential (a
browser cannot send a bearer token on a WebSocket); the pass it shows works only with its
owner's token. A refused ticket closes with 4404.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from fastapi import APIRouter
from starlette.websockets import WebSocket, WebSocketDisconnect

from headcount.api.realtime import NORMAL_CLOSURE, refuse, runtime_of
from headcount.api.realtime.capacity import drain, interval_of
from headcount.capacity import live_queue, waiting_rooms
from headcount.capacity.spaces import Space
from headcount.capacity.views import LeaseView, QueueTicketView
from headcount.domain.errors import HeadcountError
from headcount.domain.identity import Principal
from headcount.domain.queue import TicketState
from headcount.runtime import Runtime

router = APIRouter()
DEFAULT_INTERVAL = 0.5


def _message(view: QueueTicketView) -> str:
    return '{"type":"ticket","ticket":' + view.model_dump_json() + "}"


@router.websocket("/ws/queue/{ticket}")
async def queue_ticket(websocket: WebSocket, ticket: str) -> None:
    await websocket.accept()
    rt = runtime_of(websocket)
    reader: asyncio.Task[None] | None = None
    woken: asyncio.Event | None = None
    try:
        interval = interval_of(websocket.query_params.get("interval"), DEFAULT_INTERVAL)
        view = await waiting_rooms.ticket_status(rt, ticket)
    except HeadcountError as exc:
        await refuse(websocket, exc)
        return
    try:
        sent = _message(view)
        await websocket.send_text(sent)
        reader = asyncio.create_task(drain(websocket))
        # Woken at once when this process sees the room sell out or reopen.
        woken = rt.signals.subscribe(view.event_id)
        while view.state is not TicketState.GONE:
            waking = asyncio.create_task(woken.wait())
            await asyncio.wait(
                {reader, waking}, timeout=interval, return_when=asyncio.FIRST_COMPLETED
            )
            waking.cancel()
            woken.clear()
            if reader.done():
                return
            try:
                view = await waiting_rooms.ticket_status(rt, ticket)
            except HeadcountError as exc:  # the store is unreachable: say so, keep trying
                await websocket.send_json({"type": "error", "code": exc.code})
                continue
            if (text := _message(view)) != sent:
                await websocket.send_text(text)
                sent = text
        await websocket.close(code=NORMAL_CLOSURE)
    except (WebSocketDisconnect, OSError, RuntimeError):
        pass  # the visitor went away mid-send
    finally:
        if woken is not None:
            rt.signals.unsubscribe(view.event_id, woken)
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader


async def join_in_line(
    websocket: WebSocket, rt: Runtime, principal: Principal, space: Space[Any], place_id: str
) -> LeaseView | None:
    """`?queue=1` on a live space's socket: a lease, at once or after waiting in line with
    `{"type": "queued", "position": p, "queued": n}` pushed on every look. None if the
    client left (`{"type": "leave"}`) or dropped while waiting: its place in line is gone.
    """

    async def told(position: int, queued: int) -> None:
        await websocket.send_json({"type": "queued", "position": position, "queued": queued})

    waiting = asyncio.create_task(live_queue.join_in_line(rt, principal, space, place_id, told))
    listening = asyncio.create_task(_until_leave(websocket))
    try:
        await asyncio.wait({waiting, listening}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (waiting, listening):
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
    if waiting.cancelled() or not waiting.done():
        return None
    return waiting.result()  # or its refusal


async def _until_leave(websocket: WebSocket) -> None:
    """Returns when the waiting client disconnects or says `leave` (pings are fine)."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        if '"leave"' in (message.get("text") or ""):
            await websocket.send_json({"type": "left"})
            await websocket.close(code=NORMAL_CLOSURE)
            return
