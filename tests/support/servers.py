"""Real `headcount serve` processes on free loopback ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to clean up (a crash)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)


def server_env(database_url: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADCOUNT_")}
    env.update(
        {
            "HEADCOUNT_DATABASE_URL": database_url,
            "HEADCOUNT_ENV": "test",
            "HEADCOUNT_SWEEP_INTERVAL": "1",
            # Two or three test servers plus the test process share one PostgreSQL with
            # max_connections = 100: cap each server at 16 connections (requests queue in
            # the pool instead), and let them queue long enough on a loaded CI machine.
            # Fail-fast tests set their own, tighter values through `extra`.
            "HEADCOUNT_DB_POOL_SIZE": "8",
            "HEADCOUNT_DB_MAX_OVERFLOW": "8",
            "HEADCOUNT_DB_POOL_TIMEOUT": "60",
        }
    )
    env.update(extra or {})
    return env


@contextmanager
def running_server(
    database_url: str, log_dir: Path, extra_env: Mapping[str, str] | None = None
) -> Iterator[Server]:
    port = free_port()
    log_path = log_dir / f"server-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "headcount",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            env=server_env(database_url, extra_env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Server(f"http://127.0.0.1:{port}", process, log_path)
    try:
        _wait_ready(server)
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


@contextmanager
def running_servers(
    count: int, database_url: str, log_dir: Path, extra_env: Mapping[str, str] | None = None
) -> Iterator[list[Server]]:
    with ExitStack() as stack:
        yield [
            stack.enter_context(running_server(database_url, log_dir, extra_env))
            for _ in range(count)
        ]


def _wait_ready(server: Server, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{server.log()}")
        try:
            if httpx.get(server.base_url + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server not ready after {timeout}s:\n{server.log()}")
