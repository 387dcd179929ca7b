"""A webhook receiver for tests: a tiny ASGI app under uvicorn, in a thread, on 127.0.0.1.

Every request is checked with the reference verifier (`standardwebhooks.Webhook.verify`)
against the secrets the test gives it; a verified delivery is recorded with when its
request started and finished, and answered 2xx (or whatever the test asks for). A request
that does not verify is answered 400 and kept apart, so a test can assert there were none.
It can be stopped and started again on the same port (a receiver that is down).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from standardwebhooks import Webhook, WebhookVerificationError

from support.servers import free_port

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[Message], Any]


@dataclass(frozen=True)
class Received:
    webhook_id: str
    timestamp: int
    body: dict[str, Any]
    started: float
    finished: float


@dataclass
class Receiver:
    port: int = field(default_factory=free_port)
    secrets: list[str] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    # What to answer: a status for every request, or a function of the body that returns one.
    status: int = 200
    answer: Callable[[dict[str, Any]], int] | None = None
    delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        started = time.monotonic()
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        raw = b"".join(chunks)
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        body = self._verified(raw, headers)
        if body is None:
            await _answer(send, 400)
            return
        if self.delay:
            await asyncio.sleep(self.delay)
        status = self.answer(body) if self.answer else self.status
        if 200 <= status < 300:
            with self.lock:
                self.received.append(
                    Received(
                        webhook_id=headers["webhook-id"],
                        timestamp=int(headers["webhook-timestamp"]),
                        body=body,
                        started=started,
                        finished=time.monotonic(),
                    )
                )
        await _answer(send, status)

    def _verified(self, raw: bytes, headers: dict[str, str]) -> dict[str, Any] | None:
        for secret in list(self.secrets):
            try:
                verified: dict[str, Any] = Webhook(secret).verify(raw, headers)
                return verified
            except WebhookVerificationError:
                continue
        with self.lock:
            self.rejected.append(headers.get("webhook-id", "?"))
        return None

    def start(self) -> None:
        config = uvicorn.Config(
            self, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the webhook receiver did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(15)
        self._server = self._thread = None

    # What the tests read.

    def snapshot(self) -> list[Received]:
        with self.lock:
            return list(self.received)

    def first_seen(self) -> list[Received]:
        """Deduplicated by `webhook-id`, in the order they first arrived."""
        seen: dict[str, Received] = {}
        for got in sorted(self.snapshot(), key=lambda r: r.finished):
            seen.setdefault(got.webhook_id, got)
        return list(seen.values())

    def overlapping(self) -> list[tuple[Received, Received]]:
        """Pairs of requests for the same `webhook-id` that were in flight at once."""
        by_id: dict[str, list[Received]] = {}
        for got in self.snapshot():
            by_id.setdefault(got.webhook_id, []).append(got)
        pairs = []
        for copies in by_id.values():
            copies.sort(key=lambda r: r.started)
            # Sorted by start, any overlap shows between neighbours.
            pairs += [(a, b) for a, b in itertools.pairwise(copies) if b.started < a.finished]
        return pairs


async def _answer(send: Send, status: int) -> None:
    payload = json.dumps({"status": status}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": payload})


@contextmanager
def running_receiver(**options: Any) -> Iterator[Receiver]:
    receiver = Receiver(**options)
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()
