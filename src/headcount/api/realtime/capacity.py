"""`WS /ws/events/{event_id}/capacity`: the event's capacity snapshot, pushed on change.

Server → `{"type": "snapshot", "snapshot": {…}}` on connect, then again whenever any
figure changes (the `taken_at` stamp alone does not count as a change). How changes are
noticed: each socket re-reads the snapshot every `interval` seconds (default 1, query
`?interval=` between 0.25 and 30), and at once when this process admits, releases or
resizes something of the event. The polling is what makes it work across processes:
the snapshot is read from the shared database and Redis, so a change made through any
replica is pushed within one interval. No pub/sub to lose messages or to resubscribe
after a Redis restart.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from fastapi import APIRouter
from starlette.websockets import WebSocket, WebSocketDisconnect

from headcount.api.realtime import error_message, refuse, runtime_of
from headcount.capacity.snapshot import capacity_snapshot
from headcount.domain.errors import HeadcountError, InvalidRequest
from headcount.runtime import Runtime

router = APIRouter()
# When and from how far behind a snapshot was read: not a change of any figure.
_STAMPS = {"taken_at", "as_of", "replica_lag_ms"}
DEFAULT_INTERVAL = 1.0
MIN_INTERVAL, MAX_INTERVAL = 0.25, 30.0


def _interval(raw: str | None) -> float:
    if raw is None:
        return DEFAULT_INTERVAL
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not MIN_INTERVAL <= value <= MAX_INTERVAL:
        raise InvalidRequest(
            f"interval must be a number of seconds in [{MIN_INTERVAL}, {MAX_INTERVAL}]"
        )
    return value


async def _drain(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends, so a disconnect is noticed at once."""
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass


@router.websocket("/ws/events/{event_id}/capacity")
async def capacity(websocket: WebSocket, event_id: str) -> None:
    rt = runtime_of(websocket)
    await websocket.accept()
    try:
        interval = _interval(websocket.query_params.get("interval"))
        first = await capacity_snapshot(rt, event_id)
    except HeadcountError as exc:
        await refuse(websocket, exc)
        return
    event_id = first.event_id
    last: dict[str, Any] = first.model_dump(mode="json", exclude=_STAMPS)
    await websocket.send_json({"type": "snapshot", "snapshot": first.model_dump(mode="json")})
    flag = rt.signals.subscribe(event_id)
    reader = asyncio.create_task(_drain(websocket))
    try:
        await _push_changes(
            websocket,
            rt,
            event_id=event_id,
            last=last,
            flag=flag,
            reader=reader,
            interval=interval,
        )
    except (WebSocketDisconnect, OSError, RuntimeError):
        pass  # the dashboard went away mid-send
    finally:
        rt.signals.unsubscribe(event_id, flag)
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader


async def _push_changes(
    websocket: WebSocket,
    rt: Runtime,
    *,
    event_id: str,
    last: dict[str, Any],
    flag: asyncio.Event,
    reader: asyncio.Task[None],
    interval: float,
) -> None:
    while not reader.done():
        waker = asyncio.create_task(flag.wait())
        await asyncio.wait({reader, waker}, timeout=interval, return_when=asyncio.FIRST_COMPLETED)
        waker.cancel()
        flag.clear()
        if reader.done():
            return
        try:
            current = await capacity_snapshot(rt, event_id)
        except HeadcountError as exc:  # e.g. database briefly down: say so, keep going
            await websocket.send_json(error_message(exc))
            continue
        figures = current.model_dump(mode="json", exclude=_STAMPS)
        if figures != last:
            last = figures
            await websocket.send_json(
                {"type": "snapshot", "snapshot": current.model_dump(mode="json")}
            )
