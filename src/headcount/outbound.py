"""Requests Headcount sends to other people's servers (webhooks), and where they may go.

Every outbound connection is made by `Sender._connect`: it resolves the host itself,
refuses the whole destination if any address it resolves to is private, loopback,
link-local, multicast or otherwise not public (`domain/webhooks.refused_address`), and
then connects to the address it checked. Checking when the webhook is registered is not
enough (DNS can change, or answer differently a second later: DNS rebinding); checking
and connecting in one step is. `HEADCOUNT_WEBHOOK_ALLOW_PRIVATE=1` lifts the rule (tests,
closed networks).

`Sender` is a small HTTP/1.1 client made for one job, POSTing a body and keeping a
snippet of the answer, as cheaply as the relay's throughput needs: h11 (httpx's own
parser) over asyncio streams, keep-alive connections per origin, the request written in
one piece. httpx cost the relay ~80 % of its CPU per delivery (its pool, cookies, URL
merging, two writes per request, and httpcore re-trying `import sniffio` on every
request when it is not installed). It follows no redirects (a 3xx is a failed delivery,
never a hop to somewhere unchecked), uses no proxy settings, bounds the connection by
its own timeout and the whole exchange by the caller's, and reads at most the snippet
it keeps: a receiver cannot hold a relay with a slow or endless response body.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import ssl
import time
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import h11

from headcount.domain import webhooks as rules


class DestinationRefused(Exception):
    """The host resolves to an address webhooks may not reach, or does not resolve."""


class SendFailed(Exception):
    """No answer: the destination was refused, no connection, or the exchange broke."""


async def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (an IP literal resolves to itself)."""
    if (literal := rules.ip_literal(host)) is not None:
        return [str(literal)]
    loop = asyncio.get_running_loop()
    try:
        found = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise DestinationRefused(f"{host} does not resolve: {exc.strerror}") from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
    if not addresses:
        raise DestinationRefused(f"{host} does not resolve")
    return addresses


def refusal(host: str, addresses: typing.Iterable[str]) -> str | None:
    """Why `host` (resolved to `addresses`) may not be reached, or None."""
    for address in addresses:
        parsed = rules.ip_literal(address)
        reason = "unparsable" if parsed is None else rules.refused_address(parsed)
        if reason is not None:
            return f"{host} resolves to {address}, a {reason} address"
    return None


async def check_destination(host: str, port: int, *, allow_private: bool) -> list[str]:
    """The addresses to connect to, or DestinationRefused."""
    addresses = await resolve(host, port)
    if not allow_private and (why := refusal(host, addresses)) is not None:
        raise DestinationRefused(why)
    return addresses


# An idle connection is reused for this long at most: less than common servers' idle
# timeouts (uvicorn's and node's are 5 s), so a reused one is rarely already closed.
KEEPALIVE_SECONDS = 4.0
READ_CHUNK = 65_536
HEADERS = [
    ("user-agent", "Headcount-Webhooks/1"),
    ("content-type", "application/json"),
    # Only a snippet of the answer is kept: no decompression of what is thrown away.
    ("accept-encoding", "identity"),
]


@dataclass(frozen=True, slots=True)
class Target:
    tls: bool
    host: str
    port: int
    host_header: str
    path: str

    @property
    def origin(self) -> tuple[bool, str, int]:
        return (self.tls, self.host, self.port)


@functools.lru_cache(maxsize=1024)
def target_of(url: str) -> Target:
    """Where a (registered, hence checked) webhook URL points."""
    parts = urlsplit(url)
    tls = parts.scheme == "https"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SendFailed(f"not an http(s) URL: {url}")
    host = parts.hostname
    port = parts.port or (443 if tls else 80)
    shown = f"[{host}]" if ":" in host else host
    if port != (443 if tls else 80):
        shown = f"{shown}:{port}"
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(tls=tls, host=host, port=port, host_header=shown, path=path)


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.h11 = h11.Connection(our_role=h11.CLIENT)
        self.idle_since = time.monotonic()

    def usable(self) -> bool:
        """Still open as far as we can tell (the server may close it at any moment)."""
        return (
            not self.reader.at_eof()
            and not self.writer.is_closing()
            and time.monotonic() - self.idle_since < KEEPALIVE_SECONDS
        )

    def close(self) -> None:
        self.writer.close()


class _Broken(Exception):
    """The exchange failed; `answered` if any byte of a response had come."""

    def __init__(self, cause: BaseException, *, answered: bool) -> None:
        super().__init__(cause)
        self.cause = cause
        self.answered = answered


class Sender:
    """POSTs over keep-alive connections, at most `connections` at once per origin."""

    def __init__(self, *, allow_private: bool, timeout: float, connections: int) -> None:
        self.allow_private = allow_private
        self.connect_timeout = min(5.0, timeout)
        self.connections = connections
        self.idle: dict[tuple[bool, str, int], list[_Connection]] = {}
        self.slots: dict[tuple[bool, str, int], asyncio.Semaphore] = {}
        self._ssl: ssl.SSLContext | None = None

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str], *, total: float, keep: int
    ) -> tuple[int, str]:
        """POST `body`; (status code, the first `keep` bytes of the response as text).

        The whole exchange is bounded by `total` seconds (TimeoutError); SendFailed when
        there was no answer. A reused connection the server had closed meanwhile (no
        byte of an answer came) is replaced once: the request is sent again with the
        same `webhook-id`, which receivers deduplicate on.
        """
        target = target_of(url)
        slot = self.slots.setdefault(target.origin, asyncio.Semaphore(self.connections))
        async with asyncio.timeout(total), slot:
            connection, reused = await self._checkout(target)
            try:
                return await self._exchange(connection, target, body, headers, keep)
            except _Broken as broken:
                if not reused or broken.answered:
                    raise _failure(broken.cause) from broken.cause
            connection = await self._connect(target)
            try:
                return await self._exchange(connection, target, body, headers, keep)
            except _Broken as broken:
                raise _failure(broken.cause) from broken.cause

    async def _checkout(self, target: Target) -> tuple[_Connection, bool]:
        idle = self.idle.get(target.origin)
        while idle:
            connection = idle.pop()
            if connection.usable():
                return connection, True
            connection.close()
        return await self._connect(target), False

    async def _exchange(
        self,
        connection: _Connection,
        target: Target,
        body: bytes,
        headers: Mapping[str, str],
        keep: int,
    ) -> tuple[int, str]:
        answered = False
        reusable = False
        try:
            http = connection.h11
            request = h11.Request(
                method="POST",
                target=target.path,
                headers=[
                    ("host", target.host_header),
                    *HEADERS,
                    ("content-length", str(len(body))),
                    *headers.items(),
                ],
            )
            out = http.send(request) or b""
            out += http.send(h11.Data(data=body)) or b""
            out += http.send(h11.EndOfMessage()) or b""
            connection.writer.write(out)
            await connection.writer.drain()
            status = 0
            kept = bytearray()
            while True:
                event = http.next_event()
                if event is h11.NEED_DATA:
                    chunk = await connection.reader.read(READ_CHUNK)
                    answered = answered or bool(chunk)
                    http.receive_data(chunk)
                elif isinstance(event, h11.Response):
                    status = event.status_code
                elif isinstance(event, h11.Data):
                    kept += event.data
                    if len(kept) >= keep:
                        break  # the rest is not read: this connection is not reused
                elif isinstance(event, h11.EndOfMessage):
                    if http.our_state is h11.DONE and http.their_state is h11.DONE:
                        http.start_next_cycle()
                        reusable = True
                    break
                elif isinstance(event, h11.ConnectionClosed):
                    raise h11.RemoteProtocolError("the server closed the connection")
                # h11.InformationalResponse (100 Continue, …): wait for the real answer.
            return status, bytes(kept[:keep]).decode("utf-8", "replace")
        except (OSError, h11.ProtocolError) as exc:
            raise _Broken(exc, answered=answered) from exc
        finally:
            if reusable:
                connection.idle_since = time.monotonic()
                self.idle.setdefault(target.origin, []).append(connection)
            else:
                connection.close()

    async def _connect(self, target: Target) -> _Connection:
        try:
            async with asyncio.timeout(self.connect_timeout):
                addresses = await check_destination(
                    target.host, target.port, allow_private=self.allow_private
                )
                last: OSError | None = None
                for address in addresses:
                    try:
                        reader, writer = await asyncio.open_connection(
                            address,
                            target.port,
                            ssl=self.ssl_context() if target.tls else None,
                            # TLS verifies the certificate against the URL's host name,
                            # whatever address the TCP connection went to.
                            server_hostname=target.host if target.tls else None,
                        )
                        return _Connection(reader, writer)
                    except OSError as exc:
                        last = exc
                raise SendFailed(f"ConnectError: {last}")
        except TimeoutError as exc:
            raise SendFailed(f"ConnectTimeout: connecting to {target.host} timed out") from exc
        except DestinationRefused as exc:
            raise SendFailed(f"ConnectError: refused: {exc}") from exc

    def ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        return self._ssl

    async def aclose(self) -> None:
        idle, self.idle = self.idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()
                with contextlib.suppress(Exception):
                    await connection.writer.wait_closed()


def _failure(cause: BaseException) -> SendFailed:
    return SendFailed(f"{type(cause).__name__}: {cause}" if str(cause) else type(cause).__name__)
