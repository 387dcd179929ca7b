"""Private PostgreSQL and Redis instances that tests may stop, kill and restart.

Fault tests must never touch the shared servers other tests use, so each gets its own
throwaway instance on a free port, in a temporary directory, removed afterwards even when
the test fails (or pytest is killed: `_reap_when_we_die`). Besides single servers there
are the shapes production runs: a Redis Cluster of three masters with a replica each
(`private_redis_cluster`), a streaming replica of a private PostgreSQL
(`private_replica`), and PgBouncer in transaction mode in front of one
(`private_pgbouncer`).

PostgreSQL refuses to run as root: when the tests run as root, the
server commands run as the `postgres` system user (which the PostgreSQL packages create).

The benchmarks use the same instances (with their own PostgreSQL settings) so that
neither they nor the tests disturb, or are disturbed by, anyone else on the machine.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

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
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"
PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
PSQL = shutil.which("psql") or str(PG_BIN / "psql")
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


@contextlib.contextmanager
def _scratch(prefix: str, owner: str | None = None) -> Iterator[Path]:
    """A fresh directory under /tmp (short: unix socket names are limited to ~100 bytes),
    owned by `owner` when a server must run as that account; always deleted afterwards."""
    directory = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    if owner is not None:
        entry = pwd.getpwnam(owner)
        os.chown(directory, entry.pw_uid, entry.pw_gid)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def _reaped(cleanup: str) -> Iterator[None]:
    """Within: `cleanup` runs should this process die (`_reap_when_we_die`); after a
    normal exit it is the caller's teardown that cleaned up, and the watcher goes."""
    watcher = _reap_when_we_die(cleanup)
    try:
        yield
    finally:
        _dismiss(watcher)


def _run_checked(
    command: list[str], failed: str, *, timeout: float = 30, logs: Callable[[], str] = str
) -> str:
    """Run `command`; its output, or RuntimeError saying `failed` with the output (and the
    server's `logs()`)."""
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        detail = logs()
        raise RuntimeError(
            f"{failed}: {done.stdout}{done.stderr}" + (f"\n{detail}" if detail else "")
        )
    return done.stdout


def _start_redis(
    directory: Path, port: int, *options: str, what: str, logs: Callable[[], str]
) -> None:
    """A daemonized `redis-server` on `port` without persistence, its pidfile, data and log
    in `directory`, plus `options`; returns once it answers PING."""
    _run_checked(
        [
            REDIS_SERVER,
            *("--port", str(port), "--bind", "127.0.0.1"),
            *options,
            *("--save", "", "--appendonly", "no"),
            *("--daemonize", "yes", "--pidfile", str(directory / "redis.pid")),
            *("--dir", str(directory), "--logfile", str(directory / "redis.log")),
        ],
        f"redis-server ({what}) failed",
    )
    if not _wait(lambda: _redis_ping(port), 10):
        raise RuntimeError(f"{what} on {port} did not answer PING:\n{logs()}")


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


def pgbouncer_available() -> bool:
    return Path(PGBOUNCER).exists()


@dataclass
class _OwnServer:
    """A server of ours on `port`, everything it writes (its log too) in `directory`."""

    directory: Path
    port: int
    LOG: ClassVar[str]

    @property
    def log(self) -> Path:
        return self.directory / self.LOG

    def logs(self) -> str:
        """The end of the log, for an error message ("" if there is none yet)."""
        return _tail(self.log, 4000)


@dataclass
class PrivatePostgres(_OwnServer):
    LOG: ClassVar[str] = "postgres.log"
    user: str | None
    settings: Mapping[str, str] = field(default_factory=lambda: dict(FAULT_TEST_SETTINGS))

    @property
    def data(self) -> Path:
        return self.directory / "data"

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

    def admin_dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.admin_dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.admin_dsn(name)

    def base_backup(self, primary: PrivatePostgres) -> None:
        """Fill the data directory from `primary` as a standby: `pg_basebackup -R` writes
        `standby.signal` and the connection to the primary."""
        done = self._run(
            str(PG_BIN / "pg_basebackup"),
            *("-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres"),
            *("-D", str(self.data), "-R", "-X", "stream", "--no-sync", "--checkpoint=fast"),
            timeout=120,
        )
        if done.returncode != 0:
            raise RuntimeError(f"pg_basebackup failed: {done.stdout}{done.stderr}")


@contextlib.contextmanager
def _running_postgres(
    prefix: str, settings: Mapping[str, str], fill: Callable[[PrivatePostgres], None]
) -> Iterator[PrivatePostgres]:
    """A PostgreSQL on a free port whose data directory `fill` makes (initdb, or a base
    backup), started with `settings`; always stopped and deleted afterwards."""
    user = _pg_user()
    with _scratch(prefix, owner=user) as directory:
        server = PrivatePostgres(directory, free_port(), user, dict(settings))
        run_as = f"runuser -u {user} -- " if user else ""
        pg_ctl = PG_BIN / "pg_ctl"
        with _reaped(f"{run_as}{pg_ctl} -D {server.data} -m immediate stop; rm -rf {directory}"):
            try:
                fill(server)
                server.start()
                yield server
            finally:
                with contextlib.suppress(Exception):
                    server.stop("immediate")


@contextlib.contextmanager
def private_postgres(
    settings: Mapping[str, str] = FAULT_TEST_SETTINGS,
) -> Iterator[PrivatePostgres]:
    """initdb + start on a free port with `settings` (`-c` options); always stopped and
    deleted afterwards."""
    with _running_postgres("hc-pg-", settings, PrivatePostgres.init) as server:
        yield server


@dataclass
class PrivateRedis(_OwnServer):
    LOG: ClassVar[str] = "redis.log"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pidfile(self) -> Path:
        return self.directory / "redis.pid"

    def start(self) -> None:
        _start_redis(self.directory, self.port, what="private redis", logs=self.logs)

    def ping(self) -> bool:
        return _redis_ping(self.port)

    def stop(self) -> None:
        """SIGKILL the server: its (unpersisted) data is gone, like a crashed cache node."""
        _kill_pidfile(self.pidfile, self.ping)


def _kill_pidfile_cleanup(*pidfiles: Path) -> str:
    """The shell that SIGKILLs the processes named in `pidfiles` (for `_reaped`)."""
    files = " ".join(str(pidfile) for pidfile in pidfiles)
    return f'for f in {files}; do kill -9 "$(cat $f 2>/dev/null)" 2>/dev/null; done'


@contextlib.contextmanager
def private_redis() -> Iterator[PrivateRedis]:
    with _scratch("hc-redis-") as directory:
        server = PrivateRedis(directory, free_port())
        with _reaped(f"{_kill_pidfile_cleanup(server.pidfile)}; rm -rf {directory}"):
            try:
                server.start()
                yield server
            finally:
                server.stop()


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


# How long a silent master has before the cluster calls it failed and promotes its
# replica: short, so a failover test sees several in seconds (production uses ~5-15 s).
CLUSTER_NODE_TIMEOUT_MS = 1000


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_cluster_port(taken: set[int]) -> int:
    """A free port whose cluster bus port (port + 10000) is free too.

    Both below the kernel's ephemeral range (32768+), so no outgoing connection of anyone
    on the machine can take one between this check and the node binding it.
    """
    for _ in range(500):
        port = random.randint(12_000, 22_000)
        free = port not in taken and port + 10_000 not in taken
        if free and _bindable(port) and _bindable(port + 10_000):
            return port
    raise RuntimeError("no free pair of ports for a cluster node")


@dataclass
class ClusterNodeInfo:
    node_id: str
    port: int
    master: bool
    master_id: str | None
    connected: bool
    slots: list[tuple[int, int]]


@dataclass
class PrivateRedisCluster:
    """Three masters and three replicas (`redis-cli --cluster create --cluster-replicas 1`)."""

    directory: Path
    ports: list[int]

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.ports[0]}"

    def node_dir(self, port: int) -> Path:
        return self.directory / str(port)

    def pidfile(self, port: int) -> Path:
        return self.node_dir(port) / "redis.pid"

    def start_node(self, port: int) -> None:
        self.node_dir(port).mkdir(exist_ok=True)
        _start_redis(
            self.node_dir(port),
            port,
            *("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"),
            *("--cluster-node-timeout", str(CLUSTER_NODE_TIMEOUT_MS)),
            # Promote a replica however long it was cut off (tests pause replicas).
            *("--cluster-replica-validity-factor", "0"),
            # Other slots keep serving while one master is down (presence of other
            # events need not stop for one failover).
            *("--cluster-require-full-coverage", "no"),
            # A (re)joining replica syncs at once instead of waiting 5 s for company.
            *("--repl-diskless-sync-delay", "0"),
            what="cluster node",
            logs=self.logs,
        )

    def ping(self, port: int) -> bool:
        return _redis_ping(port)

    def kill_node(self, port: int) -> None:
        """SIGKILL one node: it loses everything it had not replicated."""
        _kill_pidfile(self.pidfile(port), lambda: self.ping(port))

    def pause_node(self, port: int) -> None:
        """SIGSTOP: the node holds its sockets but answers nothing (a lagging replica)."""
        os.kill(int(self.pidfile(port).read_text().strip()), signal.SIGSTOP)

    def resume_node(self, port: int) -> None:
        os.kill(int(self.pidfile(port).read_text().strip()), signal.SIGCONT)

    def create(self) -> None:
        _run_checked(
            [
                *(REDIS_CLI, "--cluster", "create"),
                *(f"127.0.0.1:{port}" for port in self.ports),
                *("--cluster-replicas", "1", "--cluster-yes"),
            ],
            "redis-cli --cluster create failed",
            timeout=60,
        )

    def command(self, port: int, *args: str | int) -> str:
        """One command through `redis-cli`, its raw text answer (redis-py would parse it)."""
        return _run_checked(
            [REDIS_CLI, "-p", str(port), *(str(a) for a in args)],
            f"redis-cli {args} on {port}",
            timeout=10,
        )

    def nodes(self, port: int | None = None) -> list[ClusterNodeInfo]:
        """The layout as one live node (the first that answers) sees it."""
        for candidate in [port] if port else self.ports:
            if candidate is None or not self.ping(candidate):
                continue
            text = self.command(candidate, "CLUSTER", "NODES")
            return [_parse_node(line) for line in text.strip().splitlines()]
        raise RuntimeError("no cluster node answers")

    def masters(self) -> list[ClusterNodeInfo]:
        return [n for n in self.nodes() if n.master and n.connected and n.slots]

    def slot_of(self, key: str) -> int:
        return int(self.command(self.masters()[0].port, "CLUSTER", "KEYSLOT", key))

    def master_for(self, key: str) -> int:
        slot = self.slot_of(key)
        for node in self.masters():
            if any(low <= slot <= high for low, high in node.slots):
                return node.port
        raise RuntimeError(f"no master owns slot {slot}")

    def replica_of(self, master_port: int) -> int:
        """The master's own word (`INFO replication`), not a peer's gossip, which may lag."""
        for line in self.command(master_port, "INFO", "replication").splitlines():
            if line.startswith("slave0:"):
                fields = dict(part.split("=", 1) for part in line.split(":", 1)[1].split(","))
                return int(fields["port"].strip())
        raise RuntimeError(f"master {master_port} has no replica")

    def healthy(self) -> bool:
        """Every node up and agreeing: state ok, three masters with slots, each with an
        online replica, and every node's gossip showing the same slot owners."""
        try:
            return self._all_up() and self._masters_replicated() and self._views_agree()
        except Exception:
            return False

    def _all_up(self) -> bool:
        return all(
            self.ping(port) and "cluster_state:ok" in self.command(port, "CLUSTER", "INFO")
            for port in self.ports
        )

    def _masters_replicated(self) -> bool:
        masters = self.masters()
        return len(masters) == 3 and all(
            "connected_slaves:1" in (info := self.command(m.port, "INFO", "replication"))
            and "state=online" in info
            for m in masters
        )

    def _views_agree(self) -> bool:
        views = {
            tuple(sorted((n.port, tuple(n.slots)) for n in self.nodes(port) if n.slots))
            for port in self.ports
        }
        return len(views) == 1

    def wait_healthy(self, timeout: float = 30) -> None:
        if not _wait(self.healthy, timeout, poll=0.1):
            raise RuntimeError(f"the cluster did not settle in {timeout}s:\n{self.logs()}")

    def start(self) -> None:
        for port in self.ports:
            self.start_node(port)

    def stop(self) -> None:
        for port in self.ports:
            self.kill_node(port)

    def come_back(self) -> None:
        """Start every node again after `stop` and wait until the cluster settles: the
        layout survives in nodes.conf, the data does not."""
        self.start()
        self.wait_healthy()

    def logs(self) -> str:
        return "\n".join(
            f"--- node {port}\n{_tail(self.node_dir(port) / 'redis.log', 1500)}"
            for port in self.ports
        )


def _parse_node(line: str) -> ClusterNodeInfo:
    fields = line.split()
    flags = fields[2].split(",")
    slots: list[tuple[int, int]] = []
    for spec in fields[8:]:
        if spec.startswith("["):
            continue  # a slot being migrated
        low, _, high = spec.partition("-")
        slots.append((int(low), int(high or low)))
    return ClusterNodeInfo(
        node_id=fields[0],
        port=int(fields[1].split(":")[1].split("@")[0]),
        master="master" in flags,
        master_id=None if fields[3] == "-" else fields[3],
        connected=fields[7] == "connected" and "fail" not in flags,
        slots=slots,
    )


@contextlib.contextmanager
def private_redis_cluster() -> Iterator[PrivateRedisCluster]:
    """Six `redis-server --cluster-enabled yes` nodes on free loopback ports, joined by
    `redis-cli --cluster create … --cluster-replicas 1`; always killed and deleted."""
    taken: set[int] = set()
    for _ in range(6):
        taken.add(free_cluster_port(taken))
    with _scratch("hc-cluster-") as directory:
        cluster = PrivateRedisCluster(directory, sorted(taken))
        pidfiles = [cluster.pidfile(port) for port in cluster.ports]
        with _reaped(f"{_kill_pidfile_cleanup(*pidfiles)}; rm -rf {directory}"):
            try:
                cluster.start()
                cluster.create()
                cluster.wait_healthy()
                yield cluster
            finally:
                for port in cluster.ports:
                    with contextlib.suppress(Exception):
                        cluster.resume_node(port)
                cluster.stop()


def _wait(condition: Callable[[], bool], seconds: float, poll: float = 0.05) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(poll)
    return False


def _tail(log: Path, chars: int) -> str:
    """The end of a server's log for an error message ("" if there is none yet)."""
    try:
        return log.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def _redis_ping(port: int) -> bool:
    """PING over a plain socket: redis-py's client retries a refused connection for
    seconds, and a dead node must be told from a live one at once."""
    try:
        with socket.create_connection(("127.0.0.1", port), 0.5) as sock:
            sock.settimeout(0.5)
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _kill_pidfile(pidfile: Path, alive: Callable[[], bool]) -> None:
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGCONT)  # a paused process dies just the same, but say so
        os.kill(pid, signal.SIGKILL)
    _wait(lambda: not alive(), 10)
    with contextlib.suppress(OSError):
        pidfile.unlink()


@dataclass
class PrivatePgBouncer(_OwnServer):
    """PgBouncer in `pool_mode = transaction` in front of one PostgreSQL server."""

    LOG: ClassVar[str] = "pgbouncer.log"
    upstream_port: int
    pool_size: int
    user: str | None

    @property
    def pidfile(self) -> Path:
        return self.directory / "pgbouncer.pid"

    def url(self, database: str) -> str:
        """A database through this pooler, marked so that Headcount knows (ledger/urls.py)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}?pooler=transaction"

    def through(self, direct_url: str) -> str:
        """`direct_url`'s database, reached through this pooler."""
        return self.url(direct_url.rsplit("/", 1)[1].split("?", maxsplit=1)[0])

    def write_config(self) -> None:
        (self.directory / "userlist.txt").write_text('"postgres" ""\n')
        (self.directory / "pgbouncer.ini").write_text(
            f"""[databases]
* = host=127.0.0.1 port={self.upstream_port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = trust
auth_file = {self.directory / "userlist.txt"}
pool_mode = transaction
default_pool_size = {self.pool_size}
max_db_connections = {self.pool_size}
reserve_pool_size = 0
max_client_conn = 1000
; transaction mode: nothing of a session survives a transaction, nothing to reset
server_reset_query =
; a dead or restarting server is retried every second, not every 15
server_login_retry = 1
server_connect_timeout = 2
query_wait_timeout = 30
admin_users = postgres
stats_users = postgres
logfile = {self.log}
pidfile = {self.pidfile}
"""
        )

    def start(self) -> None:
        if not self._listening():
            # A crashed PgBouncer leaves its pidfile (and, unreaped, a zombie that still
            # answers kill -0): a new one would refuse to start beside it.
            with contextlib.suppress(OSError):
                self.pidfile.unlink()
        command = [PGBOUNCER, "-d", str(self.directory / "pgbouncer.ini")]
        if self.user is not None:
            command[1:1] = ["-u", self.user]  # PgBouncer refuses to run as root
        _run_checked(command, "pgbouncer failed", logs=self.logs)
        if not _wait(self._listening, 10):
            raise RuntimeError(f"pgbouncer is not listening:\n{self.logs()}")

    def _listening(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), 0.5):
                return True
        except OSError:
            return False

    def is_running(self) -> bool:
        return self._listening()

    @contextlib.contextmanager
    def supervised(self, every: float = 0.2) -> Iterator[list[float]]:
        """Restart PgBouncer whenever it dies, as systemd's `Restart=always` would; yields
        the times of the restarts. Debian's PgBouncer 1.18 can crash (SIGSEGV) when clients
        cancel queries while the server is stalled (pgbouncer issue #822, fixed in 1.19):
        the tests hold Headcount to answering 503 meanwhile and recovering after."""
        restarts: list[float] = []
        done = threading.Event()

        def watch() -> None:
            while not done.wait(every):
                if not self._listening() and not done.is_set():
                    with contextlib.suppress(RuntimeError):
                        self.start()
                        restarts.append(time.monotonic())

        watcher = threading.Thread(target=watch, name="pgbouncer-supervisor", daemon=True)
        watcher.start()
        try:
            yield restarts
        finally:
            done.set()
            watcher.join(5)

    def stop(self) -> None:
        _kill_pidfile(self.pidfile, self._listening)

    def show(self, what: str) -> list[dict[str, str]]:
        """`SHOW <what>` on the admin console (simple protocol only: through psql)."""
        answer = _run_checked(
            [
                *(PSQL, "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"),
                *("-A", "-F", "\t", "-P", "footer=off", "-c", f"SHOW {what}", "pgbouncer"),
            ],
            f"SHOW {what} failed",
            timeout=10,
        )
        header, *rows = answer.strip().splitlines()
        names = header.split("\t")
        return [dict(zip(names, row.split("\t"), strict=False)) for row in rows]


@contextlib.contextmanager
def private_pgbouncer(upstream_port: int, *, pool_size: int = 20) -> Iterator[PrivatePgBouncer]:
    """PgBouncer (transaction mode, `pool_size` server connections at most) on a free port
    in front of the PostgreSQL on `upstream_port`; always stopped and deleted."""
    user = _pg_user()
    with _scratch("hc-pgb-", owner=user) as directory:
        bouncer = PrivatePgBouncer(directory, free_port(), upstream_port, pool_size, user)
        with _reaped(f"{_kill_pidfile_cleanup(bouncer.pidfile)}; rm -rf {directory}"):
            try:
                bouncer.write_config()
                bouncer.start()
                yield bouncer
            finally:
                bouncer.stop()


@contextlib.contextmanager
def private_replica(
    primary: PrivatePostgres, settings: Mapping[str, str] | None = None
) -> Iterator[PrivatePostgres]:
    """A streaming replica of `primary` on a free port: `pg_basebackup -R` (which writes
    `standby.signal` and the connection to the primary), then started as a hot standby.
    Every statement it runs is logged with the client's application name (`%a`), so a test
    can tell who read from it. Always stopped and deleted afterwards."""
    standby = {
        **FAULT_TEST_SETTINGS,
        "hot_standby": "on",
        "log_statement": "all",
        "log_line_prefix": "'app=%a '",
        **(settings or {}),
    }
    with _running_postgres("hc-pgr-", standby, lambda r: r.base_backup(primary)) as replica:
        yield replica
