"""Commit → delivery latency of webhooks at a steady rate of changes.

A writer commits changes (`changes.record` in a transaction, as decisions do) at `rate`
per second spread over a few events, and notes the wall-clock time each COMMIT returned.
One `headcount relay` process sequences, fans out and sends them to a receiver process on
127.0.0.1 that notes when each first arrived. Latency = arrival - commit, per change.

    python -m bench --suite webhooks
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

from headcount.config import Settings
from headcount.ledger import changes
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
    label = json.loads(body)["payload"]["label"]
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
    p50_ms: float
    p99_ms: float
    max_ms: float


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


async def _write(url: str, events: list[str], rate: float, seconds: float) -> dict[str, float]:
    """Commit `rate` changes per second for `seconds`; label → wall time COMMIT returned."""
    rt = Runtime.from_settings(Settings(database_url=url, env="test", db_pool_size=20))
    committed: dict[str, float] = {}
    slots = asyncio.Semaphore(32)

    async def one(n: int) -> None:
        async with slots:
            label = f"c{n}"
            async with rt.db.transaction() as tx:
                changes.record(
                    tx,
                    "order.created",
                    event_id=events[n % len(events)],
                    resource=("order", label),
                    payload={"label": label},
                    at=rt.clock(),
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
    await rt.close()
    return committed


async def _setup(url: str, receiver_url: str, events: int) -> list[str]:
    from headcount.capacity.events import EventDraft, create_event
    from headcount.capacity.webhooks import WebhookDraft, create_webhook
    from headcount.domain.identity import Principal, Role

    rt = Runtime.from_settings(Settings(database_url=url, env="test", webhook_allow_private=True))
    who = Principal(sub="bench-org", role=Role.ORGANIZER)
    made = [(await create_event(rt, who, EventDraft(name=f"B{n}"))).id for n in range(events)]
    await create_webhook(rt, who, WebhookDraft(url=receiver_url))
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
        finally:
            if relay is not None:
                stop(relay, grace=10)
            stop(receiver, grace=5)
    lags = [(seen[label] - at) * 1000 for label, at in committed.items() if label in seen]
    return Latency(
        sent=len(committed),
        delivered=len(lags),
        rate=achieved,
        p50_ms=_percentile(lags, 0.50),
        p99_ms=_percentile(lags, 0.99),
        max_ms=max(lags, default=0.0),
    )


def load_average() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f} / {five:.2f}"


if __name__ == "__main__":  # pragma: no cover - a quick manual run against a URL
    print(json.dumps(commit_to_delivery(sys.argv[1], Path("relay.log")).__dict__))
