"""Commit → delivery latency of webhooks at a steady rate of changes.

A writer commits changes at a fixed offered rate spread over a few events, each an
autocommitted INSERT of an unpositioned change row (what a decision's transaction leaves
behind, without the decision: on a loaded box, a writer going through the whole service
could not offer 500/s, and the relay is what is measured), and notes the wall-clock time
each COMMIT returned. One `headcount relay` process sequences, fans out and sends them to
a receiver process on 127.0.0.1 that notes when each first arrived. Latency = arrival -
commit, per change; delivered/s = changes delivered / (last arrival - first commit).

    python -m bench --suite webhooks --rates 250,500,1000
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]  # no stubs

from bench.fanout import _tree_cpu_seconds
from headcount.config import Settings
from headcount.runtime import Runtime
from support.servers import clean_env, free_port, stop

RECEIVER = """
import json, sys, time
import uvicorn

out = open(sys.argv[2], "a", buffering=1)

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    arrived = time.time()
    label = json.loads(body)["payload"].get("label")
    if label is not None:
        out.write(f"{label} {arrived}\\n")
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", lifespan="off")
"""


@dataclass(frozen=True)
class Latency:
    sent: int
    delivered: int
    rate: float
    delivered_per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    # Where the time went (p50 / p99 ms): commit → fanned out (sequenced and turned into a
    # delivery), fanned out → delivered (claimed, sent, settled).
    to_fan_out: tuple[float, float]
    to_delivered: tuple[float, float]
    # The same-run limit of ordered sends: one chain per event, no database.
    floor_per_s: float
    floor_trip_ms: float
    # CPU per delivered change (utime + stime from /proc), ms: what a loaded box rations.
    relay_cpu_ms: float
    receiver_cpu_ms: float


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


async def _write(url: str, events: list[str], rate: float, seconds: float) -> dict[str, float]:
    """Commit `rate` changes per second for `seconds`; label → wall time COMMIT returned."""
    pool = await asyncpg.create_pool(url.replace("+asyncpg", ""), min_size=16, max_size=16)
    committed: dict[str, float] = {}

    async def one(n: int) -> None:
        label = f"c{n}"
        await pool.execute(
            "INSERT INTO changes (event_id, type, resource_type, resource_id, payload,"
            " occurred_at) VALUES ($1, 'order.created', 'order', $2, $3::json, now())",
            events[n % len(events)],
            label,
            json.dumps({"label": label}),
        )
        committed[label] = time.time()

    start = time.monotonic()
    tasks = []
    for n in range(int(rate * seconds)):
        delay = start + n / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(n)))
    await asyncio.gather(*tasks)
    await pool.close()
    return committed


async def _http_floor(url: str, chains: int, seconds: float) -> tuple[float, float]:
    """The same-run physical limit: `chains` ordered chains of POSTs (one per event, as the
    relay's order allows) straight to the receiver with the relay's HTTP client, no
    database; (requests/s, round trip p50 ms)."""
    from headcount import outbound

    sender = outbound.Sender(allow_private=True, timeout=10.0, connections=chains)
    body = json.dumps({"payload": {}}).encode()
    trips: list[float] = []
    end = time.monotonic() + seconds

    async def chain() -> None:
        while time.monotonic() < end:
            began = time.monotonic()
            await sender.post(url, body, {"webhook-id": "floor"}, total=10.0, keep=100)
            trips.append((time.monotonic() - began) * 1000)

    started = time.monotonic()
    await asyncio.gather(*(chain() for _ in range(chains)))
    elapsed = time.monotonic() - started
    await sender.aclose()
    return len(trips) / elapsed, _percentile(trips, 0.5)


async def _stages(url: str, events: list[str]) -> tuple[tuple[float, float], ...]:
    db = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        rows = await db.fetch(
            "SELECT extract(epoch FROM d.created_at - c.occurred_at) * 1000 AS fan,"
            " extract(epoch FROM d.delivered_at - d.created_at) * 1000 AS send"
            " FROM webhook_deliveries d JOIN changes c ON c.position = d.position"
            " WHERE d.event_id = ANY($1::text[]) AND d.delivered_at IS NOT NULL",
            events,
        )
    finally:
        await db.close()
    fan = [float(r["fan"]) for r in rows]
    send = [float(r["send"]) for r in rows]
    return (
        (_percentile(fan, 0.5), _percentile(fan, 0.99)),
        (_percentile(send, 0.5), _percentile(send, 0.99)),
    )


async def _setup(url: str, receiver_url: str, events: int) -> list[str]:
    from headcount.capacity.events import EventDraft, create_event
    from headcount.capacity.webhooks import WebhookDraft, create_webhook
    from headcount.domain.identity import Principal, Role

    rt = Runtime.from_settings(Settings(database_url=url, env="test", webhook_allow_private=True))
    who = Principal(sub="bench-org", role=Role.ORGANIZER)
    made = [(await create_event(rt, who, EventDraft(name=f"B{n}"))).id for n in range(events)]
    # Only the writer's changes to this run's events: the events' own creation, and an
    # earlier run's events, would reach the receiver too.
    await create_webhook(
        rt, who, WebhookDraft(url=receiver_url, types=["order.created"], event_ids=made)
    )
    await rt.close()
    return made


def commit_to_delivery(
    url: str, log: Path, *, rate: float = 500.0, seconds: float = 20.0, events: int = 8
) -> Latency:
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        arrivals = Path(tmp) / "arrivals"
        arrivals.touch()
        script = Path(tmp) / "receiver.py"
        script.write_text(RECEIVER)
        receiver = subprocess.Popen([sys.executable, str(script), str(port), str(arrivals)])
        relay = None
        try:
            time.sleep(1.5)
            floor, trip_ms = asyncio.run(_http_floor(f"http://127.0.0.1:{port}/floor", events, 3.0))
            event_ids = asyncio.run(_setup(url, f"http://127.0.0.1:{port}/hooks", events))
            env = clean_env(
                url,
                {
                    "HEADCOUNT_WEBHOOK_ALLOW_PRIVATE": "1",
                    "HEADCOUNT_WEBHOOK_RELAY": "1",
                    "HEADCOUNT_DB_POOL_SIZE": "10",
                },
            )
            with log.open("ab") as out:
                relay = subprocess.Popen(
                    [sys.executable, "-m", "headcount", "relay", "--log-level", "warning"],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            time.sleep(2)
            relay_cpu = _tree_cpu_seconds(relay.pid)
            receiver_cpu = _tree_cpu_seconds(receiver.pid)
            began = time.monotonic()
            committed = asyncio.run(_write(url, event_ids, rate, seconds))
            achieved = len(committed) / (time.monotonic() - began)
            deadline = time.monotonic() + 60
            seen: dict[str, float] = {}
            while time.monotonic() < deadline:
                seen = {}
                for line in arrivals.read_text().splitlines():
                    label, at = line.split()
                    seen.setdefault(label, float(at))
                if len(seen) >= len(committed):
                    break
                time.sleep(0.5)
            relay_cpu = _tree_cpu_seconds(relay.pid) - relay_cpu
            receiver_cpu = _tree_cpu_seconds(receiver.pid) - receiver_cpu
            to_fan_out, to_delivered = asyncio.run(_stages(url, event_ids))
        finally:
            if relay is not None:
                stop(relay, grace=10)
            stop(receiver, grace=5)
    lags = [(seen[label] - at) * 1000 for label, at in committed.items() if label in seen]
    arrived = [seen[label] for label in committed if label in seen]
    span = max(arrived, default=0.0) - min(committed.values(), default=0.0)
    return Latency(
        sent=len(committed),
        delivered=len(lags),
        rate=achieved,
        delivered_per_s=len(arrived) / span if span > 0 else 0.0,
        p50_ms=_percentile(lags, 0.50),
        p99_ms=_percentile(lags, 0.99),
        max_ms=max(lags, default=0.0),
        to_fan_out=to_fan_out,
        to_delivered=to_delivered,
        floor_per_s=floor,
        floor_trip_ms=trip_ms,
        relay_cpu_ms=relay_cpu * 1000 / max(1, len(lags)),
        receiver_cpu_ms=receiver_cpu * 1000 / max(1, len(lags)),
    )


def load_average() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f} / {five:.2f}"


if __name__ == "__main__":  # pragma: no cover - a quick manual run against a URL
    print(json.dumps(commit_to_delivery(sys.argv[1], Path("relay.log")).__dict__))
