"""ASGI middleware: request ids, request body limit and latency metrics."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from headcount import metrics, origin
from headcount.api.problems import problem

REQUEST_ID = "x-request-id"
# A caller's id is kept if it looks like one (a UUID, a trace id, a proxy's token): short,
# printable, no spaces; anything else is replaced, never echoed into headers or the log.
_SANE_ID = re.compile(r"[A-Za-z0-9._:+=/-]{1,100}")


class RequestId:
    """Every request gets an id: the caller's sane `X-Request-Id`, or a new one.

    The id is echoed in the response's `X-Request-Id` and set as the request's origin
    (`origin.begin_request`), so every change the request records carries it; the auth
    dependency adds who is asking. Reset when the request ends.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = ""
        for name, value in scope.get("headers", []):
            if name == b"x-request-id":
                given = value.decode("latin-1")
                request_id = given if _SANE_ID.fullmatch(given) else ""
                break
        request_id = request_id or uuid.uuid4().hex
        header = (REQUEST_ID.encode(), request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k != header[0]]
                message = {**message, "headers": [*kept, header]}
            await send(message)

        token = origin.begin_request(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            origin.end_request(token)


class _TooLarge(Exception):
    pass


class BodyLimit:
    """Refuse bodies over `limit` bytes with 413, whether or not Content-Length is sent."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.limit
                except ValueError:
                    too_big = False
                if too_big:
                    await self._refuse(scope, receive, send)
                    return
        seen = 0
        started = False
        exceeded = False

        async def limited_receive() -> Message:
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    exceeded = True
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                # The framework caught _TooLarge while reading the body and answers 400
                # "error parsing the body"; the truthful answer is ours: 413.
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await self._refuse(scope, receive, send)
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(
            413,
            "payload_too_large",
            "The request body is too large",
            f"request bodies are limited to {self.limit} bytes",
            instance=scope.get("path"),
        )
        await response(scope, receive, send)


class Latency:
    """Record request latency per route template (not per raw path: ids would explode labels)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route: Any = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            # Routes inside an included router report their path without the mount prefix.
            api = "/api/v1"
            if scope["path"].startswith(api) and not template.startswith(api):
                template = api + template
            metrics.REQUEST_LATENCY.labels(scope["method"], template, str(status)).observe(
                time.perf_counter() - start
            )
