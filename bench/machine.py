"""Facts about the machine and helpers to run its tools (pgbench, wrk, redis-benchmark)."""

from __future__ import annotations

import os
import platform
import re
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PG_ADMIN = os.environ.get(
    "HEADCOUNT_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("HEADCOUNT_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


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


PG_BIN = Path("/usr/lib/postgresql/15/bin")


@contextmanager
def private_postgres(max_connections: int = 400) -> Iterator[str]:
    """Our own PostgreSQL cluster on a free port, so 256 clients fit (the shared one allows 100).

    Same binaries and default durability (fsync, synchronous_commit) as the shared server;
    only `max_connections` is raised. Runs as the `postgres` user when we are root, since
    initdb refuses root.
    """
    import tempfile
    import time

    from bench.servers import free_port

    base = Path(tempfile.mkdtemp(prefix="hc-bench-pg-"))
    data = base / "data"
    port = free_port()
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [*as_user, str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    options = (
        f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c max_connections={max_connections}"
        " -c shared_buffers=256MB"
    )
    subprocess.run(
        [
            *as_user,
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(base / "log"),
            "-w",
            "start",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*as_user, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
            check=False,
            stdout=subprocess.DEVNULL,
        )
        time.sleep(0.2)
        shutil.rmtree(base, ignore_errors=True)


@contextmanager
def scratch_postgres_database(prefix: str = "hc_bench", server: str = PG_ADMIN) -> Iterator[str]:
    """A fresh database on the given server, dropped afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = make_url(server).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(admin).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
