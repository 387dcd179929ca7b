"""The relay's HTTP client (outbound.Sender) against servers that misbehave on purpose.

Keep-alive is what makes the relay fast, and what can go wrong with it: a server that
closed an idle connection, an answer longer than what is kept, a chunked answer, a slow
one. Each server here is a few lines of asyncio over h11, so each misbehaviour is exact.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import h11
import pytest

from headcount import outbound

# How a test server answers one request on a connection: the h11 events to send, or None
# to close the connection without answering.
Answer = Callable[[int, int], list[h11.Event] | None]


class Server:
    def __init__(self, answer: Answer, *, pause: float = 0.0) -> None:
        self.answer = answer
        self.pause = pause
        self.connections = 0
        self.requests = 0
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        on_connection = 0
        conn = h11.Connection(our_role=h11.SERVER)
        try:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    data = await reader.read(65_536)
                    conn.receive_data(data)
                    if not data:
                        return
                    continue
                if isinstance(event, h11.EndOfMessage):
                    self.requests += 1
                    on_connection += 1
                    events = self.answer(self.requests, on_connection)
                    if events is None:
                        return
                    for each in events:
                        writer.write(conn.send(each) or b"")
                        await writer.drain()
                        await asyncio.sleep(self.pause)
                    if conn.our_state is h11.MUST_CLOSE:
                        return
                    conn.start_next_cycle()
                elif isinstance(event, h11.ConnectionClosed):
                    return
        finally:
            writer.close()


@asynccontextmanager
async def serving(answer: Answer, *, pause: float = 0.0) -> AsyncIterator[Server]:
    server = Server(answer, pause=pause)
    listening = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    server.port = listening.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        listening.close()


def ok(body: bytes = b"fine", **headers: str) -> list[h11.Event]:
    return [
        h11.Response(
            status_code=200,
            headers=[("content-length", str(len(body))), *headers.items()],
        ),
        h11.Data(data=body),
        h11.EndOfMessage(),
    ]


async def posting(
    server: Server, times: int, *, keep: int = 1_000, total: float = 5.0
) -> list[tuple[int, str]]:
    sender = outbound.Sender(allow_private=True, timeout=total, connections=4)
    url = f"http://127.0.0.1:{server.port}/hooks?x=1"
    try:
        return [
            await sender.post(url, b"{}", {"webhook-id": "msg_1"}, total=total, keep=keep)
            for _ in range(times)
        ]
    finally:
        await sender.aclose()


async def test_one_connection_carries_many_requests() -> None:
    async with serving(lambda n, _: ok()) as server:
        assert await posting(server, 5) == [(200, "fine")] * 5
    assert server.connections == 1


async def test_a_closed_idle_connection_is_replaced_and_the_request_sent_again() -> None:
    """The server drops the connection instead of answering its second request (as one
    does when its idle timeout and our request cross): sent again on a new connection."""
    async with serving(lambda n, on_connection: ok() if on_connection == 1 else None) as server:
        assert await posting(server, 3) == [(200, "fine")] * 3
    assert server.connections == 3
    assert server.requests == 5  # requests 2 and 4 were dropped and sent again


async def test_a_new_connection_closed_without_an_answer_fails() -> None:
    async with serving(lambda n, _: None) as server:
        with pytest.raises(outbound.SendFailed):
            await posting(server, 1)
    assert server.requests == 1, "no retry on a fresh connection"


async def test_only_the_kept_snippet_is_read_and_that_connection_is_not_reused() -> None:
    async with serving(lambda n, _: ok(b"x" * 10_000)) as server:
        assert await posting(server, 2, keep=100) == [(200, "x" * 100)] * 2
    assert server.connections == 2


async def test_chunked_answers_and_redirects_are_read_not_followed() -> None:
    def answer(n: int, _: int) -> list[h11.Event]:
        if n == 1:
            return [
                h11.Response(status_code=202, headers=[("transfer-encoding", "chunked")]),
                h11.Data(data=b"ac"),
                h11.Data(data=b"cepted"),
                h11.EndOfMessage(),
            ]
        return [
            h11.Response(
                status_code=302, headers=[("location", "http://10.0.0.1/"), ("content-length", "0")]
            ),
            h11.EndOfMessage(),
        ]

    async with serving(answer) as server:
        assert await posting(server, 2) == [(202, "accepted"), (302, "")]
    assert server.connections == 1
    assert server.requests == 2


async def test_a_slow_answer_is_bounded_by_the_total_timeout() -> None:
    async with serving(lambda n, _: ok(), pause=1.0) as server:
        started = asyncio.get_running_loop().time()
        with pytest.raises(TimeoutError):
            await posting(server, 1, total=0.5)
        assert asyncio.get_running_loop().time() - started < 0.9


async def test_private_destinations_are_refused_at_connect_time() -> None:
    async with serving(lambda n, _: ok()) as server:
        sender = outbound.Sender(allow_private=False, timeout=2.0, connections=1)
        with pytest.raises(outbound.SendFailed, match="loopback"):
            await sender.post(f"http://localhost:{server.port}/", b"{}", {}, total=2.0, keep=10)
        await sender.aclose()
    assert server.connections == 0
