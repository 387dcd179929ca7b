"""An idle keep-alive connection outlives a client's own idle expiry (`headcount serve`).

httpx drops idle connections after 5 s, and so did uvicorn by default: both sides closed
at the same moment, and a POST sent on the closing connection got no answer at all (CI
saw it once in the flash sale). The server now keeps idle connections 75 s.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

from support.servers import running_server

REQUEST = b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n"


def _answer(sock: socket.socket) -> bytes:
    sock.sendall(REQUEST)
    data = b""
    while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def test_an_idle_connection_is_still_served_after_six_seconds(
    sqlite_url: str, log_dir: Path
) -> None:
    with running_server(sqlite_url, log_dir) as server:
        host, port = server.base_url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            assert _answer(sock).startswith(b"HTTP/1.1 200")
            time.sleep(6)  # past the 5 s at which uvicorn's default closed it
            assert _answer(sock).startswith(b"HTTP/1.1 200")
