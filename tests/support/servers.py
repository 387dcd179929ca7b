"""Real `headcount serve` processes on free loopback ports.

The tests and the benchmarks (bench/servers.py) start servers with the same pieces: a
free port, an environment holding only the settings asked for, the same command line,
the same readiness probe and the same shutdown.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from support import services
from support.api import client
from support.databases import backend_url

# Two or three test servers plus the test process share one PostgreSQL with
# max_connections = 100: cap each server at 16 connections (requests queue in the pool
# instead), and let them queue long enough on a loaded CI machine. Fail-fast tests set
# their own, tighter values through `extra`.
TEST_SETTINGS = {
    "HEADCOUNT_SWEEP_INTERVAL": "1",
    "HEADCOUNT_DB_POOL_SIZE": "8",
    "HEADCOUNT_DB_MAX_OVERFLOW": "8",
    "HEADCOUNT_DB_POOL_TIMEOUT": "60",
}


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


def clean_env(database_url: str, settings: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without its HEADCOUNT_ variables, plus `settings`.

    A developer's own HEADCOUNT_ settings must never leak into a server under test.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADCOUNT_")}
    env.update({"HEADCOUNT_DATABASE_URL": database_url, "HEADCOUNT_ENV": "test", **settings})
    return env


def server_env(database_url: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    return clean_env(database_url, {**TEST_SETTINGS, **(extra or {})})


def spawn(port: int, env: Mapping[str, str], log: Path, *options: str) -> subprocess.Popen[bytes]:
    """`headcount serve` on 127.0.0.1:`port`, its output appended to `log`."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                *(sys.executable, "-m", "headcount", "serve"),
                *("--host", "127.0.0.1", "--port", str(port)),
                *options,
                *("--log-level", "warning"),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def wait_ready(
    process: subprocess.Popen[bytes],
    base_url: str,
    *,
    timeout: float,
    poll: float,
    explain: Callable[[], str],
) -> None:
    """Until `/readyz` answers 200; `explain()` (the log, or where it is) goes in the error."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{explain()}")
        try:
            if httpx.get(base_url + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(poll)
    raise RuntimeError(f"server not ready after {timeout}s:\n{explain()}")


def stop(process: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM (a graceful shutdown), SIGKILL after `grace` seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@contextmanager
def _started(
    database_url: str, log_dir: Path, extra_env: Mapping[str, str] | None
) -> Iterator[Server]:
    """A server process launched (not yet ready), stopped on the way out."""
    port = free_port()
    log_path = log_dir / f"server-{port}.log"
    log_path.write_bytes(b"")
    process = spawn(port, server_env(database_url, extra_env), log_path)
    try:
        yield Server(f"http://127.0.0.1:{port}", process, log_path)
    finally:
        stop(process, grace=10)


@contextmanager
def running_server(
    database_url: str, log_dir: Path, extra_env: Mapping[str, str] | None = None
) -> Iterator[Server]:
    with _started(database_url, log_dir, extra_env) as server:
        _wait_ready(server)
        yield server


@contextmanager
def running_servers(
    count: int, database_url: str, log_dir: Path, extra_env: Mapping[str, str] | None = None
) -> Iterator[list[Server]]:
    """`count` servers on one (already migrated) database, launched side by side.

    A start is seconds of CPU (imports, the schema check): launched one after the other,
    a two-process test waited for two of them; side by side, on two cores, for about one.
    """
    with ExitStack() as stack:
        servers = [
            stack.enter_context(_started(database_url, log_dir, extra_env)) for _ in range(count)
        ]
        for server in servers:
            _wait_ready(server)
        yield servers


@asynccontextmanager
async def serving(
    count: int,
    database_url: str,
    log_dir: Path,
    extra_env: Mapping[str, str] | None = None,
    *,
    connections: int = 100,
) -> AsyncIterator[tuple[list[Server], list[httpx.AsyncClient]]]:
    """`running_servers` and a client for each server, sized for `connections` at once;
    the clients are closed before the servers stop, however the test ends."""
    with running_servers(count, database_url, log_dir, extra_env) as servers:
        clients = [client(s.base_url, connections=connections) for s in servers]
        try:
            yield servers, clients
        finally:
            for http in clients:
                await http.aclose()


def _wait_ready(server: Server, timeout: float = 90.0) -> None:
    wait_ready(server.process, server.base_url, timeout=timeout, poll=0.1, explain=server.log)


# Small pools: other suites share this PostgreSQL; joins hold a connection for one read.
SMALL_POOL = {"HEADCOUNT_DB_POOL_SIZE": "5", "HEADCOUNT_DB_MAX_OVERFLOW": "5"}
# Every admission to one event, session or area queues on one row: a few connections per
# process serve it as fast as many, and the rest of the clients wait in the pool rather than
# on the row lock (whose timeout is the 503 path). It also leaves PostgreSQL connections for
# the other suites sharing this machine (SQLSTATE 53300 otherwise).
ROW_QUEUE_POOLS = {
    "HEADCOUNT_DB_POOL_SIZE": "6",
    "HEADCOUNT_DB_MAX_OVERFLOW": "2",
    "HEADCOUNT_DB_POOL_TIMEOUT": "60",
}


@contextmanager
def two_processes(
    request: pytest.FixtureRequest, log_dir: Path
) -> Iterator[tuple[str, list[Server]]]:
    """Two server processes sharing the database of the backend `request` names, on pools
    sized for one hot row (`ROW_QUEUE_POOLS`); (its URL, the servers)."""
    url = backend_url(request)
    with running_servers(2, url, log_dir, ROW_QUEUE_POOLS) as servers:
        yield url, servers


def presence_env(ttl: float, url: str | None = None, grace: float = 15) -> dict[str, str]:
    """Server settings for presence on Redis `url` (default: the shared one, which must be
    there), under a key prefix of its own so parallel runs never meet, on small pools."""
    if url is None:
        services.need_redis()
    return {
        "HEADCOUNT_REDIS_URL": url or services.REDIS_URL,
        "HEADCOUNT_REDIS_KEY_PREFIX": f"hctest-{secrets.token_hex(6)}",
        "HEADCOUNT_PRESENCE_TTL": str(ttl),
        "HEADCOUNT_PRESENCE_GRACE": str(grace),
        **SMALL_POOL,
    }
