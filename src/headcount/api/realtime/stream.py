"""`WS /ws/events/{event_id}/stream`: one viewer lease per open socket.

Protocol (JSON text frames):

* server → `{"type": "joined", "lease": {…}, "viewers": n, "limit": m}` once admitted
  (again, with `"rejoined": true`, if the lease was lost, e.g. in a Redis restart, and a
  place was still free, or still the viewer's); `viewers` counts places taken, those
  held in grace included, and `lease.place` says `resumed` when the viewer's place was
  given back;
* server → `{"type": "error", "code": "viewer_limit_reached", …}` then close 4409; with
  `?queue=1` a full stream instead queues the viewer, pushing `{"type": "queued",
  "position": p, "queued": n}` until a place frees (FIFO), then `joined`; a viewer who
  leaves or drops while queued loses the place in line (docs/waiting-room.md);
* client → `{"type": "ping"}` renews the lease; server → `{"type": "pong", …}`;
* client → `{"type": "leave"}` frees the place at once; server → `{"type": "left"}`,
  close 1000;
* a socket that ends without `leave` (closed, dropped, or this server shutting down)
  keeps its place for the viewer for the stream's grace: connecting again within it
  takes the place back, even when the stream is full. A client silent for the whole TTL
  gets `lease_expired` and close 4410; its lease has lapsed and its grace runs from then.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

from fastapi import APIRouter
from starlette.websockets import WebSocket, WebSocketDisconnect

from headcount.api.realtime import (
    NORMAL_CLOSURE,
    authenticate,
    error_message,
    refuse,
    runtime_of,
)
from headcount.api.realtime import queue as queue_ws
from headcount.capacity import live
from headcount.capacity.spaces import VIEWERS
from headcount.capacity.views import LeaseView
from headcount.domain.errors import (
    HeadcountError,
    InvalidRequest,
    LeaseExpired,
    ServiceUnavailable,
)
from headcount.domain.identity import Principal
from headcount.runtime import Runtime

router = APIRouter()
MAX_MESSAGE_CHARS = 4096


def joined(lease: LeaseView, *, rejoined: bool = False) -> dict[str, Any]:
    message: dict[str, Any] = {
        "type": "joined",
        "lease": lease.model_dump(mode="json"),
        "viewers": lease.occupancy,
        "limit": lease.limit,
    }
    if rejoined:
        message["rejoined"] = True
    return message


@router.websocket("/ws/events/{event_id}/stream")
async def stream(websocket: WebSocket, event_id: str) -> None:
    rt = runtime_of(websocket)
    await websocket.accept()
    try:
        principal = authenticate(websocket, rt)
        if websocket.query_params.get("queue") == "1":  # wait in line when full (queue.py)
            found = await queue_ws.join_in_line(websocket, rt, principal, VIEWERS, event_id)
            if found is None:
                return  # left or dropped while waiting
            lease = found
        else:
            lease = await live.join(rt, principal, VIEWERS, event_id)
    except HeadcountError as exc:
        await refuse(websocket, exc)
        return
    await websocket.send_json(joined(lease))
    holder = _Viewer(rt, websocket, principal, event_id, lease)
    try:
        await holder.serve()
    except (WebSocketDisconnect, OSError, RuntimeError):
        pass  # the client went away mid-send: the finally clause lets its lease go
    finally:
        await holder.let_go(leaving=False)


class _Viewer:
    """One admitted socket: renews on ping, gives the place back however it ends."""

    def __init__(
        self,
        rt: Runtime,
        websocket: WebSocket,
        principal: Principal,
        event_id: str,
        lease: LeaseView,
    ) -> None:
        self.rt = rt
        self.websocket = websocket
        self.principal = principal
        self.event_id = event_id
        self.lease: LeaseView | None = lease
        self.deadline = time.monotonic() + lease.ttl_seconds

    async def serve(self) -> None:
        while self.lease is not None:
            wait = self.deadline - time.monotonic()
            try:
                message = await asyncio.wait_for(self.websocket.receive(), timeout=max(0, wait))
            except TimeoutError:
                self.lease = None  # the store has already let it go
                await refuse(
                    self.websocket,
                    LeaseExpired("no ping within the lease TTL; reconnect to watch again"),
                )
                return
            if message["type"] == "websocket.disconnect":
                return
            await self._handle(message.get("text") or "")

    async def _handle(self, text: str) -> None:
        kind = _message_type(text)
        if kind == "ping":
            await self._renew()
        elif kind == "leave":
            await self.let_go(leaving=True)
            await self.websocket.send_json({"type": "left"})
            await self.websocket.close(code=NORMAL_CLOSURE)
        else:
            problem = InvalidRequest('send {"type": "ping"} or {"type": "leave"}')
            await self.websocket.send_json(error_message(problem))

    async def _renew(self) -> None:
        assert self.lease is not None
        try:
            lease = await live.heartbeat(self.rt, self.principal, self.lease.lease_id)
        except LeaseExpired:
            await self._rejoin()
            return
        except ServiceUnavailable as exc:
            # Keep the socket: the lease may well survive a short outage.
            await self.websocket.send_json(error_message(exc))
            return
        self._hold(lease)
        await self.websocket.send_json(
            {
                "type": "pong",
                "expires_at": lease.model_dump(mode="json")["expires_at"],
                "viewers": lease.occupancy,
                "limit": lease.limit,
            }
        )

    async def _rejoin(self) -> None:
        """The lease is gone (Redis restarted, or it lapsed): take a place again if free."""
        self.lease = None
        try:
            lease = await live.join(self.rt, self.principal, VIEWERS, self.event_id)
        except HeadcountError as exc:
            await refuse(self.websocket, exc)
            return
        self._hold(lease)
        await self.websocket.send_json(joined(lease, rejoined=True))

    def _hold(self, lease: LeaseView) -> None:
        self.lease = lease
        self.deadline = time.monotonic() + lease.ttl_seconds

    async def let_go(self, *, leaving: bool) -> None:
        """End the lease now: a leave frees the place at once; any other end of the
        socket keeps it for the viewer's return within grace. If the store is unreachable
        the lease expires on its own (and its grace follows)."""
        lease, self.lease = self.lease, None
        if lease is not None:
            end = live.release if leaving else live.drop
            with contextlib.suppress(HeadcountError):
                await end(self.rt, self.principal, lease.lease_id)


def _message_type(text: str) -> str | None:
    if not text or len(text) > MAX_MESSAGE_CHARS:
        return None
    try:
        decoded = json.loads(text)
    except ValueError:
        return None
    kind = decoded.get("type") if isinstance(decoded, dict) else None
    return kind if isinstance(kind, str) else None
