"""Requests Headcount sends to other people's servers (webhooks), and where they may go.

Every outbound connection is made by `GuardedBackend`: it resolves the host itself,
refuses the whole destination if any address it resolves to is private, loopback,
link-local, multicast or otherwise not public (`domain/webhooks.refused_address`), and
then connects to the address it checked. Checking when the webhook is registered is not
enough (DNS can change, or answer differently a second later: DNS rebinding); checking
and connecting in one step is. `HEADCOUNT_WEBHOOK_ALLOW_PRIVATE=1` lifts the rule (tests,
closed networks).

The client follows no redirects (a 3xx is a failed delivery, never a hop to somewhere
unchecked), ignores proxy settings from the environment, and has connect, read, write
and pool timeouts; the caller bounds the whole request too.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import typing

import httpcore
import httpx

from headcount.domain import webhooks as rules


class DestinationRefused(Exception):
    """The host resolves to an address webhooks may not reach, or does not resolve."""


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


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend with the address rule applied at connect time.

    TLS still verifies the certificate against the URL's host name: httpcore passes the
    origin's host as `server_hostname` whatever address the TCP connection went to.
    """

    def __init__(self, *, allow_private: bool) -> None:
        self.allow_private = allow_private
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                addresses = await check_destination(host, port, allow_private=self.allow_private)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from exc
        except DestinationRefused as exc:
            raise httpcore.ConnectError(f"refused: {exc}") from exc
        last: Exception | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks are sent over TCP only")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over a connection pool that connects through `GuardedBackend`."""

    def __init__(self, *, allow_private: bool, limits: httpx.Limits) -> None:
        super().__init__(trust_env=False, limits=limits)
        context = ssl.create_default_context()
        # httpx builds its pool without a way to pass a network backend; this is the
        # same pool it builds, with ours.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(allow_private=allow_private),
        )


def client(*, allow_private: bool, timeout: float, connections: int) -> httpx.AsyncClient:
    """The client webhooks are sent with."""
    limits = httpx.Limits(
        max_connections=connections, max_keepalive_connections=connections, keepalive_expiry=30
    )
    return httpx.AsyncClient(
        transport=GuardedTransport(allow_private=allow_private, limits=limits),
        timeout=httpx.Timeout(timeout, connect=min(5.0, timeout), pool=timeout),
        follow_redirects=False,
        trust_env=False,
        headers={
            "user-agent": "Headcount-Webhooks/1",
            "content-type": "application/json",
            # Only a snippet of the answer is kept: no decompression of what is thrown away.
            "accept-encoding": "identity",
        },
    )


async def post(
    http: httpx.AsyncClient,
    url: str,
    body: str,
    headers: dict[str, str],
    *,
    total: float,
    keep: int,
) -> tuple[int, str]:
    """POST `body`; (status code, the first `keep` bytes of the response as text).

    The whole exchange is bounded by `total` seconds (TimeoutError), and at most `keep`
    bytes of the answer are read: a receiver cannot hold a relay with a slow or endless
    response body.
    """
    async with asyncio.timeout(total):
        request = http.build_request("POST", url, content=body.encode(), headers=headers)
        response = await http.send(request, stream=True)
        try:
            kept = bytearray()
            async for chunk in response.aiter_raw():
                kept += chunk
                if len(kept) >= keep:
                    break
            return response.status_code, bytes(kept[:keep]).decode("utf-8", "replace")
        finally:
            await response.aclose()
