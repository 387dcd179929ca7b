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
        return _redis_ping(self.port)

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


REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"
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
        done = subprocess.run(
            [
                REDIS_SERVER,
                *("--port", str(port), "--bind", "127.0.0.1"),
                *("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"),
                *("--cluster-node-timeout", str(CLUSTER_NODE_TIMEOUT_MS)),
                # Promote a replica however long it was cut off (tests pause replicas).
                *("--cluster-replica-validity-factor", "0"),
                # Other slots keep serving while one master is down (presence of other
                # events need not stop for one failover).
                *("--cluster-require-full-coverage", "no"),
                *("--save", "", "--appendonly", "no"),
                # A (re)joining replica syncs at once instead of waiting 5 s for company.
                *("--repl-diskless-sync-delay", "0"),
                *("--daemonize", "yes", "--pidfile", str(self.pidfile(port))),
                *("--dir", str(self.node_dir(port))),
                *("--logfile", str(self.node_dir(port) / "redis.log")),
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"redis-server (cluster node) failed: {done.stdout}{done.stderr}")
        if not _wait(lambda: self.ping(port), 10):
            raise RuntimeError(f"cluster node {port} did not answer PING:\n{self.logs()}")

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
        done = subprocess.run(
            [
                REDIS_CLI,
                "--cluster",
                "create",
                *(f"127.0.0.1:{port}" for port in self.ports),
                *("--cluster-replicas", "1", "--cluster-yes"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {done.stdout}{done.stderr}")

    def command(self, port: int, *args: str | int) -> str:
        """One command through `redis-cli`, its raw text answer (redis-py would parse it)."""
        done = subprocess.run(
            [REDIS_CLI, "-p", str(port), *(str(a) for a in args)],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"redis-cli {args} on {port}: {done.stdout}{done.stderr}")
        return done.stdout

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
        tails = []
        for port in self.ports:
            with contextlib.suppress(OSError):
                text = (self.node_dir(port) / "redis.log").read_text(errors="replace")
                tails.append(f"--- node {port}\n{text[-1500:]}")
        return "\n".join(tails)


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
    directory = Path(tempfile.mkdtemp(prefix="hc-cluster-", dir="/tmp"))
    taken: set[int] = set()
    for _ in range(6):
        taken.add(free_cluster_port(taken))
    cluster = PrivateRedisCluster(directory, sorted(taken))
    pidfiles = " ".join(str(cluster.pidfile(port)) for port in cluster.ports)
    watcher = _reap_when_we_die(
        f'for f in {pidfiles}; do kill -9 "$(cat $f 2>/dev/null)" 2>/dev/null; done; '
        f"rm -rf {directory}"
    )
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
        shutil.rmtree(directory, ignore_errors=True)
        _dismiss(watcher)


def _wait(condition: Callable[[], bool], seconds: float, poll: float = 0.05) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(poll)
    return False


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


PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
PSQL = shutil.which("psql") or str(PG_BIN / "psql")


def pgbouncer_available() -> bool:
    return Path(PGBOUNCER).exists()


@dataclass
class PrivatePgBouncer:
    """PgBouncer in `pool_mode = transaction` in front of one PostgreSQL server."""

    directory: Path
    port: int
    upstream_port: int
    pool_size: int
    user: str | None

    @property
    def pidfile(self) -> Path:
        return self.directory / "pgbouncer.pid"

    @property
    def log(self) -> Path:
        return self.directory / "pgbouncer.log"

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
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"pgbouncer failed: {done.stdout}{done.stderr}\n{self.logs()}")
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
        done = subprocess.run(
            [
                *(PSQL, "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"),
                *("-A", "-F", "\t", "-P", "footer=off", "-c", f"SHOW {what}", "pgbouncer"),
            ],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"SHOW {what} failed: {done.stdout}{done.stderr}")
        header, *rows = done.stdout.strip().splitlines()
        names = header.split("\t")
        return [dict(zip(names, row.split("\t"), strict=False)) for row in rows]

    def logs(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-3000:]
        except OSError:
            return ""


@contextlib.contextmanager
def private_pgbouncer(upstream_port: int, *, pool_size: int = 20) -> Iterator[PrivatePgBouncer]:
    """PgBouncer (transaction mode, `pool_size` server connections at most) on a free port
    in front of the PostgreSQL on `upstream_port`; always stopped and deleted."""
    user = _pg_user()
    directory = Path(tempfile.mkdtemp(prefix="hc-pgb-", dir="/tmp"))
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(directory, entry.pw_uid, entry.pw_gid)
    bouncer = PrivatePgBouncer(directory, free_port(), upstream_port, pool_size, user)
    watcher = _reap_when_we_die(
        f'kill -9 "$(cat {bouncer.pidfile} 2>/dev/null)"; rm -rf {directory}'
    )
    try:
        bouncer.write_config()
        bouncer.start()
        yield bouncer
    finally:
        bouncer.stop()
        shutil.rmtree(directory, ignore_errors=True)
        _dismiss(watcher)


@contextlib.contextmanager
def private_replica(
    primary: PrivatePostgres, settings: Mapping[str, str] | None = None
) -> Iterator[PrivatePostgres]:
    """A streaming replica of `primary` on a free port: `pg_basebackup -R` (which writes
    `standby.signal` and the connection to the primary), then started as a hot standby.
    Every statement it runs is logged with the client's application name (`%a`), so a test
    can tell who read from it. Always stopped and deleted afterwards."""
    user = _pg_user()
    directory = Path(tempfile.mkdtemp(prefix="hc-pgr-", dir="/tmp"))
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(directory, entry.pw_uid, entry.pw_gid)
    standby = {
        **FAULT_TEST_SETTINGS,
        "hot_standby": "on",
        "log_statement": "all",
        "log_line_prefix": "'app=%a '",
        **(settings or {}),
    }
    replica = PrivatePostgres(directory, free_port(), user, standby)
    run_as = f"runuser -u {user} -- " if user else ""
    watcher = _reap_when_we_die(
        f"{run_as}{PG_BIN / 'pg_ctl'} -D {replica.data} -m immediate stop; rm -rf {directory}"
    )
    try:
        done = replica._run(
            str(PG_BIN / "pg_basebackup"),
            *("-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres"),
            *("-D", str(replica.data), "-R", "-X", "stream", "--no-sync", "--checkpoint=fast"),
            timeout=120,
        )
        if done.returncode != 0:
            raise RuntimeError(f"pg_basebackup failed: {done.stdout}{done.stderr}")
        replica.start()
        yield replica
    finally:
        with contextlib.suppress(Exception):
            replica.stop("immediate")
        shutil.rmtree(directory, ignore_errors=True)
        _dismiss(watcher)
