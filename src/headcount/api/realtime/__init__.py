"""WebSocket endpoints: stream viewers (a lease per socket) and the capacity push channel.

Close codes are `4000 + the HTTP status` of the refusal, so clients can branch the same
way they do on REST problem codes: 4401 unauthorized, 4404 not found, 4409 limit reached,
4410 lease expired (no ping within the TTL), 4503 presence store unreachable.
"""

from __future__ import annotations

from typing import Any

from starlette.websockets import WebSocket, WebSocketState

from headcount import origin
from headcount.domain.errors import HeadcountError, Unauthorized
from headcount.domain.identity import Principal
from headcount.runtime import Runtime
from headcount.tokens import verify

NORMAL_CLOSURE = 1000


def runtime_of(websocket: WebSocket) -> Runtime:
    rt: Runtime = websocket.app.state.runtime
    return rt


def authenticate(websocket: WebSocket, rt: Runtime) -> Principal:
    """Browsers cannot set headers on a WebSocket, so `?token=` is accepted too."""
    token = websocket.query_params.get("token")
    if not token:
        header = websocket.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        token = value.strip() if scheme.lower() == "bearer" else ""
    if not token:
        raise Unauthorized("send ?token=<jwt> or Authorization: Bearer <jwt>")
    who = verify(token, rt.settings)
    origin.set_actor(who.sub, who.role.value)  # a stream it fills is recorded as theirs
    return who


def error_message(exc: HeadcountError) -> dict[str, Any]:
    return {
        "type": "error",
        "code": exc.code,
        "title": exc.title,
        "detail": exc.detail,
        **exc.extra,
    }


def close_code(exc: HeadcountError) -> int:
    return 4000 + exc.status


async def refuse(websocket: WebSocket, exc: HeadcountError) -> None:
    """Say why (a message), then close with the matching application code."""
    if websocket.application_state is WebSocketState.CONNECTED:
        await websocket.send_json(error_message(exc))
        await websocket.close(code=close_code(exc), reason=exc.code)
