"""Private PostgreSQL and Redis instances that fault tests may stop, kill and restart.

Fault tests must never touch the shared servers other tests use, so each gets its own
throwaway instance on a free port, in a temporary directory, removed afterwards even when
the test fails. PostgreSQL refuses to run as root: when the tests run as root, the
server commands run as the `postgres` system user (which the PostgreSQL packages create).

The benchmarks use the same instances (with their own PostgreSQL settings) so that
neither they nor the tests disturb, or are disturbed by, anyone else on the machine.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from support.servers import free_port


def _pg_bin() -> Path:
    """Where initdb and pg_ctl live: $HEADCOUNT_TEST_PG_BIN, else the newest Debian layout."""
    if configured := os.environ.get("HEADCOUNT_TEST_PG_BIN"):
        return Path(configured)
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if found:
        return found[-1]
    on_path = shutil.which("pg_ctl")
    return Path(on_path).parent if on_path else Path("/usr/lib/postgresql/15/bin")


PG_BIN = _pg_bin()
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
# Fault tests crash the server on purpose and never need the data again: no fsync.
FAULT_TEST_SETTINGS = {"fsync": "off", "max_connections": "100"}


def _reap_when_we_die(cleanup: str) -> subprocess.Popen[bytes]:
    """Run the shell `cleanup` once this test process is gone, however it ended.

    Fixture finalizers do not run when pytest is killed (a CI timeout, SIGKILL), which
    would leave a private server running on its random port forever. A detached watcher
    polls our pid and cleans up after us; after a normal teardown it finds nothing to do.
    """
    watcher = f"while kill -0 {os.getpid()} 2>/dev/null; do sleep 1; done; {cleanup}"
    return subprocess.Popen(
        ["sh", "-c", watcher],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        cwd="/",
    )


def _dismiss(watcher: subprocess.Popen[bytes]) -> None:
    """A normal teardown cleaned up already: stop the watcher without running its cleanup."""
    watcher.kill()
    watcher.wait(5)


def _pg_user() -> str | None:
    """The unprivileged account to run PostgreSQL as, or None to run as ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError as exc:
        raise RuntimeError("running as root and there is no `postgres` user") from exc
    return "postgres"


def postgres_available() -> bool:
    return (PG_BIN / "initdb").exists() and (PG_BIN / "pg_ctl").exists()


def redis_available() -> bool:
    return Path(REDIS_SERVER).exists()


@dataclass
class PrivatePostgres:
    directory: Path
    port: int
    user: str | None
    settings: Mapping[str, str] = field(default_factory=lambda: dict(FAULT_TEST_SETTINGS))

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def log(self) -> Path:
        return self.directory / "postgres.log"

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        command = list(args)
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        return subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, check=False, cwd="/"
        )

    def _pg_ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), *args)

    def init(self) -> None:
        done = self._run(
            str(PG_BIN / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
        )
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stdout}{done.stderr}")

    def start(self) -> None:
        settings = {"listen_addresses": "127.0.0.1", **self.settings}
        options = f"-p {self.port} -k {self.directory} " + " ".join(
            f"-c {name}={value}" for name, value in settings.items()
        )
        done = self._pg_ctl("-o", options, "-l", str(self.log), "-w", "-t", "30", "start")
        if done.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed: {done.stdout}{done.stderr}\n{self.logs()}")

    def stop(self, mode: str = "fast") -> None:
        """`fast` disconnects clients and shuts down; `immediate` is a crash (no checkpoint)."""
        self._pg_ctl("-m", mode, "-w", "-t", "30", "stop")

    def is_running(self) -> bool:
        return self._pg_ctl("status").returncode == 0

    def logs(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def admin_dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.admin_dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.admin_dsn(name)


@contextlib.contextmanager
def private_postgres(
    settings: Mapping[str, str] = FAULT_TEST_SETTINGS,
) -> Iterator[PrivatePostgres]:
    """initdb + start on a free port with `settings` (`-c` options); always stopped and
    deleted afterwards."""
    user = _pg_user()
    # Short path (unix socket names are limited to ~100 bytes), readable by `postgres`.
    directory = Path(tempfile.mkdtemp(prefix="hc-pg-", dir="/tmp"))
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(directory, entry.pw_uid, entry.pw_gid)
    server = PrivatePostgres(directory, free_port(), user, dict(settings))
    run_as = f"runuser -u {user} -- " if user else ""
    watcher = _reap_when_we_die(
        f"{run_as}{PG_BIN / 'pg_ctl'} -D {server.data} -m immediate stop; rm -rf {directory}"
    )
    try:
        server.init()
        server.start()
        yield server
    finally:
        with contextlib.suppress(Exception):
            server.stop("immediate")
        shutil.rmtree(directory, ignore_errors=True)
        _dismiss(watcher)


@dataclass
class PrivateRedis:
    directory: Path
    port: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pidfile(self) -> Path:
        return self.directory / "redis.pid"

    def start(self) -> None:
        done = subprocess.run(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "yes",
                "--pidfile",
                str(self.pidfile),
                "--dir",
                str(self.directory),
                "--logfile",
                str(self.directory / "redis.log"),
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"redis-server failed: {done.stdout}{done.stderr}")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.ping():
                return
            time.sleep(0.05)
        raise RuntimeError("private redis did not answer PING")

    def ping(self) -> bool:
        import redis

        try:
            client = redis.Redis(port=self.port, socket_timeout=0.5, socket_connect_timeout=0.5)
            try:
                return bool(client.ping())
            finally:
                client.close()
        except redis.RedisError:
            return False

    def stop(self) -> None:
        """SIGKILL the server: its (unpersisted) data is gone, like a crashed cache node."""
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.ping():
            time.sleep(0.05)
        with contextlib.suppress(OSError):
            self.pidfile.unlink()


@contextlib.contextmanager
def private_redis() -> Iterator[PrivateRedis]:
    directory = Path(tempfile.mkdtemp(prefix="hc-redis-", dir="/tmp"))
    server = PrivateRedis(directory, free_port())
    watcher = _reap_when_we_die(
        f'kill -9 "$(cat {server.pidfile} 2>/dev/null)"; rm -rf {directory}'
    )
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)
        _dismiss(watcher)


def _postgres_pids(server: PrivatePostgres) -> list[int]:
    try:
        postmaster = int((server.data / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return []
    children = subprocess.run(
        ["pgrep", "-P", str(postmaster)], capture_output=True, text=True, check=False
    ).stdout.split()
    return [postmaster, *(int(pid) for pid in children)]


@contextlib.contextmanager
def frozen(server: PrivatePostgres) -> Iterator[None]:
    """SIGSTOP every PostgreSQL process: connections stay open but nothing answers.

    This is what a network partition or a stalled disk looks like to a client, and the
    case server-side timeouts cannot catch. Always thawed (SIGCONT) afterwards.
    """
    pids = _postgres_pids(server)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 19)  # SIGSTOP
    try:
        yield
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 18)  # SIGCONT
