"""What the change log costs the flash sale, and how far the feed trails the decisions.

Two `serve --workers 2` servers on the same private PostgreSQL, one with the change log
on (the default) and one with `HEADCOUNT_CHANGE_LOG=off`, take turns selling (off, on,
off, on, …) so that whatever else loads the machine falls on both alike; the CPU the
servers and PostgreSQL spend per hold is reported too (steadier than a rate while
others share the machine). Recording `order.created` adds no statement on PostgreSQL: a
lone order's row rides in the UPDATE that takes its stock, a batch's rows in the batch's
items INSERT; the sequencer positions rows off the request path, one statement a run.

Then the "on" server sells again while a reader pages `GET /api/v1/changes` every 20 ms
(as the platform service) and notes, for each change, how long after its decision
(`occurred_at`, taken when the order's transaction starts) it could first be read: the
feed's lag, transaction time included. The reader is a consumer's load, not what
recording costs, so those runs are reported apart.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench.flash_sale import SaleResult, flash_sale
from bench.machine import postmaster_pid, tree_cpu_seconds
from bench.report import Row, median
from bench.servers import serve
from headcount.config import Settings
from headcount.domain.identity import Role
from headcount.tokens import mint


@dataclass(frozen=True)
class Lag:
    changes: int
    p50_ms: float
    p99_ms: float
    max_ms: float


class FeedReader:
    """Pages the whole feed in a thread while a sale runs; records each change's lag."""

    def __init__(self, base: str, after: str | None) -> None:
        self.base, self.after = base, after
        self.lags: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        token = mint(Settings(), "bench-platform", Role.SERVICE)
        self._headers = {"Authorization": f"Bearer {token}"}

    def __enter__(self) -> FeedReader:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=30, headers=self._headers) as http:
            while not self._stop.is_set():
                params: dict[str, str | int] = {"limit": 1000}
                if self.after is not None:
                    params["after"] = self.after
                body = http.get("/api/v1/changes", params=params).json()
                seen = datetime.now(UTC)
                for change in body["changes"]:
                    decided = datetime.fromisoformat(change["occurred_at"])
                    self.lags.append((seen - decided).total_seconds() * 1000)
                self.after = body["next"]
                if not body["has_more"]:
                    time.sleep(0.02)

    def lag(self) -> Lag:
        found = sorted(self.lags)
        if not found:
            return Lag(0, 0.0, 0.0, 0.0)
        return Lag(
            len(found),
            found[len(found) // 2],
            found[min(len(found) - 1, int(len(found) * 0.99))],
            found[-1],
        )


def _head(base: str) -> str | None:
    """The feed's current end, so a reader starts with the sale, not the log's history."""
    token = mint(Settings(), "bench-platform", Role.SERVICE)
    headers = {"Authorization": f"Bearer {token}"}
    after: str | None = None
    with httpx.Client(base_url=base, timeout=30, headers=headers) as http:
        while True:
            params: dict[str, str | int] = {"limit": 1000}
            if after is not None:
                params["after"] = after
            body = http.get("/api/v1/changes", params=params).json()
            after = body["next"]
            if not body["has_more"]:
                return after


def compare(
    url: str,
    log: Path,
    extra_env: dict[str, str],
    *,
    reps: int,
    seconds: float,
    connections: int = 64,
    stock: int = 100_000,
) -> list[Row]:
    runs: dict[str, list[SaleResult]] = {"on": [], "off": [], "read": []}
    cpu: dict[str, list[float]] = {"on": [], "off": []}  # ms of CPU per hold
    lags: list[Lag] = []
    with (
        serve(url, workers=2, log=log, extra_env={**extra_env, "HEADCOUNT_CHANGE_LOG": "on"}) as on,
        serve(
            url, workers=2, log=log, extra_env={**extra_env, "HEADCOUNT_CHANGE_LOG": "off"}
        ) as off,
    ):
        postgres = postmaster_pid(url)
        for _ in range(reps):
            for mode, served in (("off", off), ("on", on)):
                before = tree_cpu_seconds(served.pid, postgres)
                sale = flash_sale(
                    served.base, url, stock=stock, connections=connections, seconds=seconds
                )
                used = tree_cpu_seconds(served.pid, postgres) - before
                runs[mode].append(sale)
                cpu[mode].append(used / max(1, sale.successes) * 1000)
        # The reader is a consumer's load, not what recording costs: measured apart.
        for _ in range(reps):
            with FeedReader(on.base, _head(on.base)) as reader:
                runs["read"].append(
                    flash_sale(on.base, url, stock=stock, connections=connections, seconds=seconds)
                )
                time.sleep(1.0)  # let the reader catch up with the last commits
            lags.append(reader.lag())
    off_rate = median([r.successes_per_s for r in runs["off"]])
    rows: list[Row] = []
    labels = {"off": "off", "on": "on", "read": "on, a reader paging the feed"}
    for mode in ("off", "on", "read"):
        rate = median([r.successes_per_s for r in runs[mode]])
        figures: dict[str, float | int | str] = {
            "holds/s": rate,
            "p50 ms": median([r.p50_ms for r in runs[mode]]),
            "p99 ms": median([r.p99_ms for r in runs[mode]]),
            "oversold": max(r.oversold for r in runs[mode]),
            "on/off": round(rate / off_rate, 3) if off_rate else 0.0,
        }
        if cpu.get(mode):
            # Servers + PostgreSQL: steadier than a rate on a machine others share too.
            figures["CPU ms/hold"] = round(median(cpu[mode]), 3)
            figures["CPU on/off"] = round(median(cpu["on"]) / median(cpu["off"]), 3)
        if mode == "read":
            figures |= {
                "changes read": sum(lag.changes for lag in lags),
                "feed lag p50 ms": median([lag.p50_ms for lag in lags]),
                "feed lag p99 ms": median([lag.p99_ms for lag in lags]),
                "feed lag max ms": max(lag.max_ms for lag in lags),
            }
        rows.append(
            Row(
                f"flash sale, change log {labels[mode]}, 2 processes, stock {stock:,}, "
                f"{connections} in flight",
                figures,
            )
        )
    return rows
