"""Facts about the machine, its private servers, and helpers to run its tools (pgbench, wrk,
redis-benchmark)."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import support.databases
import support.private_services
from headcount.ledger.migrate import upgrade
from support.private_services import PrivateRedis

PG_ADMIN = os.environ.get(
    "HEADCOUNT_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@dataclass(frozen=True)
class Machine:
    cpus: int
    cpu_model: str
    memory_gib: float
    python: str
    postgres: str
    redis: str

    def describe(self) -> str:
        return (
            f"{self.cpus} cores ({self.cpu_model}), {self.memory_gib:.0f} GiB, Python {self.python}, "
            f"{self.postgres}, {self.redis}"
        )


def _first_line(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.strip().splitlines()[0] if out.strip() else "unknown"


def machine() -> Machine:
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            found = re.search(r"model name\s*:\s*(.+)", f.read())
            model = found.group(1).strip() if found else platform.processor()
    except OSError:
        pass
    mem = 0.0
    try:
        with open("/proc/meminfo") as f:
            found = re.search(r"MemTotal:\s*(\d+)", f.read())
            mem = int(found.group(1)) / 1024 / 1024 if found else 0.0
    except OSError:
        pass
    return Machine(
        cpus=os.cpu_count() or 0,
        cpu_model=model,
        memory_gib=mem,
        python=platform.python_version(),
        postgres=_first_line(["psql", "--version"]),
        redis=_first_line(["redis-server", "--version"]),
    )


def ensure_tool(binary: str, package: str) -> str:
    """Install a Debian package when its tool is missing and we may (root); else explain."""
    found = shutil.which(binary)
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print(f"installing {package} for {binary} …", file=sys.stderr)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", package],
            check=False,
            stdout=subprocess.DEVNULL,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        found = shutil.which(binary)
    if not found:
        raise SystemExit(f"{binary} is needed: apt-get install {package}")
    return found


@contextmanager
def private_postgres(max_connections: int = 400) -> Iterator[str]:
    """Our own PostgreSQL cluster on a free port, so 256 clients fit (the shared one allows 100).

    The same binaries and default durability (fsync, synchronous_commit) as the shared
    server; only `max_connections` and `shared_buffers` are raised. Yields its admin URL.
    """
    settings = {"max_connections": str(max_connections), "shared_buffers": "256MB"}
    with support.private_services.private_postgres(settings) as server:
        yield server.admin_dsn()


@contextmanager
def scratch_postgres_database(prefix: str = "hc_bench", server: str = PG_ADMIN) -> Iterator[str]:
    """A fresh, migrated database on the given server, dropped afterwards."""
    with support.databases.postgres_database(prefix, server=server) as url:
        yield url


@contextmanager
def scratch_sqlite_database(name: str) -> Iterator[str]:
    """A fresh, migrated SQLite database file `name`.db, deleted afterwards."""
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/{name}.db"
        upgrade(url)
        yield url


@contextmanager
def postgres_and_redis() -> Iterator[tuple[str, PrivateRedis]]:
    """A fresh database on a private PostgreSQL (256 clients fit) and a private Redis: two
    `serve` processes share live presence through it (serve refuses --workers 2 without)."""
    with (
        support.private_services.private_redis() as redis,
        private_postgres() as server,
        scratch_postgres_database(server=server) as url,
    ):
        yield url, redis


def tool_output(*command: str) -> str:
    """What a measuring tool printed; a tool that fails voids the run."""
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def figure(pattern: str, output: str, *, flags: int = 0) -> str:
    """The first group of `pattern` in a tool's output; without it the run is void."""
    found = re.search(pattern, output, flags)
    if found is None:
        raise RuntimeError(f"no {pattern!r} in the tool's output:\n{output}")
    return found.group(1)


_TICK = os.sysconf("SC_CLK_TCK")


def _processes() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, CPU seconds used so far), for every process (Linux /proc)."""
    found: dict[int, tuple[int, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        found[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICK)
    return found


def tree_cpu_seconds(*roots: int) -> float:
    """CPU seconds used by these processes and all their descendants (alive ones)."""
    table = _processes()
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    total, todo, seen = 0.0, list(roots), set()
    while todo:
        pid = todo.pop()
        if pid in seen or pid not in table:
            continue
        seen.add(pid)
        total += table[pid][1]
        todo += children.get(pid, [])
    return total


def postmaster_pid(database_url: str) -> int:
    """The postmaster serving `database_url`'s port (a private cluster of ours)."""
    port = re.search(r":(\d+)/", database_url)
    if port is None:
        raise RuntimeError(f"no port in {database_url}")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline") as f:
                command = f.read().split("\0")
        except OSError:
            continue
        server = command[0].endswith("postgres") and "-p" in command
        if server and command[command.index("-p") + 1] == port.group(1):
            return int(entry)
    raise RuntimeError(f"no postmaster on port {port.group(1)}")
