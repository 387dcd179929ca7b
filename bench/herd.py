"""The stream-start herd: thousands of viewers open the stream socket within seconds.

`ws_herd` opens `viewers` sockets on `WS /ws/events/{id}/stream` on an open-loop schedule
(viewer i starts its handshake at `i * within / viewers` s, whether or not earlier ones
were answered, as a crowd does), each with its own token, against a stream limited to
`limit`. A viewer's join time runs from its TCP connect to its first frame (`joined`, or
the `viewer_limit_reached` error whose close code must be 4409). Admitted viewers keep
their sockets open until every viewer was answered and the server's own count was read,
so "never over the limit" is checked exactly: admitted ≤ limit and the server counts
exactly as many viewers as were told `joined`.

`http_herd` is the same for lease joins over HTTP: `attendees` POST booth visits and room
joins at once, each on its own connection with its own token.

The client is a few lines of raw asyncio per socket in `procs` processes (uvloop), not a
WebSocket library: it shares the 2 cores with the server, so its cost per handshake is
kept far below the server's.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event as ProcessEvent
from pathlib import Path
from typing import Any

import httpx

from bench.machine import scratch_sqlite_database, tree_cpu_seconds
from bench.servers import Served, serve
from headcount.config import Settings
from headcount.domain.identity import Role
from headcount.tokens import mint

LIMIT_REACHED = 4409
# The Sec-WebSocket-Key is a nonce the server echoes hashed; the bench does not check it.
_UPGRADE = (
    "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


@dataclass(frozen=True)
class Answer:
    outcome: str  # "joined", "4409" (refused at the limit), or what went wrong
    started: float  # time.time() of the connect
    ms: float  # connect → first frame (WS) or response (HTTP)


@dataclass(frozen=True)
class HerdResult:
    asked: int
    limit: int
    admitted: int
    refused_4409: int
    other: dict[str, int]
    counted_by_server: int  # the server's own count while every admitted socket was open
    joins_per_s: float  # answers / (last answer - first connect)
    offered_per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    server_cores: float  # server CPU during the herd, in cores
    server_cpu_ms: float  # server CPU per answer: the cost of a join, whatever the load

    @property
    def exact(self) -> bool:
        return (
            not self.other
            and self.admitted + self.refused_4409 == self.asked
            and self.admitted == min(self.asked, self.limit)
            and self.counted_by_server == self.admitted
        )


async def _frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One unmasked server frame: (opcode, payload)."""
    head = await reader.readexactly(2)
    size = head[1] & 0x7F
    if size == 126:
        size = int.from_bytes(await reader.readexactly(2), "big")
    elif size == 127:
        size = int.from_bytes(await reader.readexactly(8), "big")
    return head[0] & 0x0F, await reader.readexactly(size)


async def _open_viewer(
    host: str, port: int, path: str
) -> tuple[str, asyncio.StreamWriter | None, float]:
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(_UPGRADE.format(path=path, host=f"{host}:{port}").encode())
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        writer.close()
        return f"http {head[9:12].decode()}", None, started
    opcode, payload = await _frame(reader)
    took = time.perf_counter()
    message = json.loads(payload) if opcode == 1 else {}
    if message.get("type") == "joined":
        return "joined", writer, (took - started) * 1000
    opcode, payload = await _frame(reader)  # the close frame: its code says why
    writer.close()
    code = int.from_bytes(payload[:2], "big") if opcode == 8 and len(payload) >= 2 else 0
    return (
        str(code) if code else f"frame {message.get('code')}",
        None,
        (took - started) * 1000,
    )


def _client_process(  # noqa: PLR0917 - multiprocessing passes them positionally
    jobs: list[tuple[int, str]],
    start_at: float,
    spacing: float,
    host: str,
    port: int,
    answers: Connection,
    release: ProcessEvent,
    http_body: bool,
) -> None:
    """Open this process's share of the herd on schedule; report; hold until released."""
    import uvloop

    async def main() -> None:
        held: list[asyncio.StreamWriter] = []

        async def one(index: int, path: str) -> Answer:
            await asyncio.sleep(max(0.0, start_at + index * spacing - time.time()))
            wall = time.time()
            try:
                if http_body:
                    outcome, ms = await _post(host, port, path)
                else:
                    outcome, writer, ms = await _open_viewer(host, port, path)
                    if writer is not None:
                        held.append(writer)
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                outcome, ms = type(exc).__name__, (time.time() - wall) * 1000
            return Answer(outcome, wall, ms)

        found = await asyncio.gather(*(one(i, path) for i, path in jobs))
        answers.send([(a.outcome, a.started, a.ms) for a in found])
        await asyncio.get_running_loop().run_in_executor(None, release.wait)
        for writer in held:
            writer.close()

    uvloop.run(main())


async def _post(host: str, port: int, target: str) -> tuple[str, float]:
    """One POST on a fresh connection (`target` is `path|token`); the status it got."""
    path, token = target.split("|", 1)
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(
        (
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
            "Content-Length: 0\r\nConnection: close\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    status = (await reader.readline())[9:12].decode()
    await reader.read()  # to the end: the whole answer was received
    writer.close()
    return status, (time.perf_counter() - started) * 1000


def _herd(
    base: str,
    targets: list[str],
    *,
    limit: int,
    within: float,
    procs: int,
    http_body: bool,
    server_pid: int,
    count: Callable[[], int],
) -> HerdResult:
    """Run the schedule across `procs` client processes; `count()` is the server's count
    read while every admitted socket is held."""
    host, port = base.removeprefix("http://").split(":")
    spacing = within / len(targets)
    start_at = time.time() + 1.0  # every process is up and waiting by then
    release = multiprocessing.Event()
    pipes, children = [], []
    for p in range(procs):
        jobs = [(i, targets[i]) for i in range(p, len(targets), procs)]
        receive, send = multiprocessing.Pipe(duplex=False)
        child = multiprocessing.Process(
            target=_client_process,
            args=(jobs, start_at, spacing, host, int(port), send, release, http_body),
        )
        child.start()
        pipes.append(receive)
        children.append(child)
    time.sleep(max(0.0, start_at - time.time()))
    cpu = tree_cpu_seconds(server_pid)
    answers = [Answer(*a) for pipe in pipes for a in pipe.recv()]
    cores = tree_cpu_seconds(server_pid) - cpu
    last = max(a.started + a.ms / 1000 for a in answers)
    first = min(a.started for a in answers)
    try:
        counted = count()
    finally:
        release.set()
        for child in children:
            child.join(30)
    seconds = max(last - first, 1e-9)
    return _summary(
        answers, limit=limit, counted=counted, seconds=seconds, within=within, cores=cores / seconds
    )


def _pct(values: list[float], pct: int) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def _summary(
    answers: list[Answer], *, limit: int, counted: int, seconds: float, within: float, cores: float
) -> HerdResult:
    outcomes: dict[str, int] = {}
    for answer in answers:
        outcomes[answer.outcome] = outcomes.get(answer.outcome, 0) + 1
    admitted = outcomes.pop("joined", 0) + outcomes.pop("200", 0) + outcomes.pop("201", 0)
    refused = outcomes.pop(str(LIMIT_REACHED), 0) + outcomes.pop("409", 0)
    times = [a.ms for a in answers]
    return HerdResult(
        asked=len(answers),
        limit=limit,
        admitted=admitted,
        refused_4409=refused,
        other=outcomes,
        counted_by_server=counted,
        joins_per_s=round(len(answers) / seconds, 1),
        offered_per_s=round(len(answers) / within, 1),
        p50_ms=round(_pct(times, 50), 1),
        p99_ms=round(_pct(times, 99), 1),
        max_ms=round(max(times), 1),
        server_cores=round(cores, 2),
        server_cpu_ms=round(cores * seconds * 1000 / len(answers), 3),
    )


def _organizer() -> dict[str, str]:
    return {"Authorization": f"Bearer {mint(Settings(), 'herd-org', Role.ORGANIZER)}"}


def ws_herd(
    base: str, server_pid: int, *, viewers: int, limit: int, within: float, procs: int = 2
) -> HerdResult:
    """`viewers` sockets opened within `within` s on a stream limited to `limit`."""
    made = httpx.post(
        f"{base}/api/v1/events",
        json={"name": "Herd", "virtual_settings": {"max_concurrent_viewers": limit}},
        headers=_organizer(),
        timeout=30,
    )
    made.raise_for_status()
    event_id = made.json()["id"]
    settings = Settings()
    paths = [
        f"/ws/events/{event_id}/stream?token={mint(settings, f'herd-{os.getpid()}-{i}', Role.ATTENDEE)}"
        for i in range(viewers)
    ]

    def count() -> int:
        snap = httpx.get(f"{base}/api/v1/events/{event_id}/capacity", timeout=30).json()
        return int(_viewers_in(snap))

    return _herd(
        base,
        paths,
        limit=limit,
        within=within,
        procs=procs,
        http_body=False,
        server_pid=server_pid,
        count=count,
    )


def _viewers_in(snapshot: dict[str, Any]) -> int:
    viewers = snapshot["viewers"]
    return int(viewers["viewers"] if isinstance(viewers, dict) else viewers)


def http_herd(
    base: str, server_pid: int, *, attendees: int, limit: int, within: float, procs: int = 2
) -> HerdResult:
    """`attendees` lease joins within `within` s over HTTP: half visit a booth, half join a
    breakout room, each place limited to `limit // 2`."""
    org = _organizer()

    def made(path: str, body: dict[str, Any]) -> str:
        answer = httpx.post(f"{base}/api/v1{path}", json=body, headers=org, timeout=30)
        answer.raise_for_status()
        return str(answer.json()["id"])

    event_id = made("/events", {"name": "Expo"})
    session_id = made(
        f"/events/{event_id}/sessions", {"title": "Breakouts", "max_participants": 100_000}
    )
    half = limit // 2
    booth = made(f"/events/{event_id}/booths", {"name": "Booth", "max_visitors": half})
    room = made(f"/sessions/{session_id}/breakout-rooms", {"name": "Room", "capacity": half})
    settings = Settings()
    targets = [
        (f"/api/v1/booths/{booth}/visits" if i % 2 == 0 else f"/api/v1/breakout-rooms/{room}/join")
        + "|"
        + mint(settings, f"expo-{os.getpid()}-{i}", Role.ATTENDEE)
        for i in range(attendees)
    ]

    def count() -> int:
        taken = 0
        for path, field in (
            (f"/booths/{booth}", "visitors"),
            (f"/breakout-rooms/{room}", "participants"),
        ):
            taken += int(httpx.get(f"{base}/api/v1{path}", timeout=30).json()[field])
        return taken

    return _herd(
        base,
        targets,
        limit=half * 2,
        within=within,
        procs=procs,
        http_body=True,
        server_pid=server_pid,
        count=count,
    )


@contextmanager
def herd_server(redis_url: str, log: Path) -> Iterator[Served]:
    """The one `headcount serve` process a herd meets: a fresh SQLite, presence on
    `redis_url`, leases that outlive the herd (no heartbeats are sent)."""
    with scratch_sqlite_database("herd") as url:
        env = {"HEADCOUNT_REDIS_URL": redis_url, "HEADCOUNT_PRESENCE_TTL": "120"}
        with serve(url, workers=1, log=log, extra_env=env) as served:
            yield served


def main() -> None:
    """`python -m bench.herd [--viewers N] [--within S] [--http]`: one herd on one server
    process (private Redis, SQLite), sampled by py-spy; prints the result and the profile."""
    import argparse
    import subprocess
    import sys
    import tempfile

    from bench.profile import summarize
    from support.private_services import private_redis

    parser = argparse.ArgumentParser(prog="python -m bench.herd")
    parser.add_argument("--viewers", type=int, default=3000)
    parser.add_argument("--within", type=float, default=3.0)
    parser.add_argument("--http", action="store_true", help="lease joins over HTTP instead")
    args = parser.parse_args()
    with (
        private_redis() as redis,
        tempfile.TemporaryDirectory() as tmp,
        herd_server(redis.url, Path(tmp) / "server.log") as served,
    ):
        raw = Path(__file__).parent / "out" / "herd-profile.txt"
        raw.parent.mkdir(exist_ok=True)
        # --gil: only the thread running Python (the loop), not the idle waits.
        spy = subprocess.Popen(
            [
                *(str(Path(sys.executable).parent / "py-spy"), "record", "--gil"),
                *("-p", str(served.pid), "-d", str(int(args.within + 4)), "-r", "200"),
                *("-f", "raw", "-o", str(raw)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        cap = args.viewers * 4 // 5
        if args.http:
            result = http_herd(
                served.base, served.pid, attendees=args.viewers, limit=cap, within=args.within
            )
        else:
            result = ws_herd(
                served.base, served.pid, viewers=args.viewers, limit=cap, within=args.within
            )
        spy.wait(60)
        print(result)
        print(summarize(raw, top=40))


if __name__ == "__main__":
    main()
