"""A `headcount serve --workers N` process for the benchmarks (N processes, one port)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from support.servers import clean_env, free_port, spawn, stop, wait_ready

BENCH_SETTINGS = {
    "HEADCOUNT_HOLD_TTL": "3600",
    # The benchmark measures admission, not the per-user quota: lift it.
    "HEADCOUNT_MAX_PENDING_ORDERS_PER_USER": "1000000",
}


@dataclass(frozen=True)
class Served:
    base: str
    pid: int  # the uvicorn process (with one worker, the one that serves)


@contextmanager
def serve(
    database_url: str, *, workers: int, log: Path, extra_env: Mapping[str, str] | None = None
) -> Iterator[Served]:
    port = free_port()
    env = clean_env(database_url, {**BENCH_SETTINGS, **(extra_env or {})})
    proc = spawn(port, env, log, "--workers", str(workers))
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, base, timeout=60, poll=0.2, explain=lambda: f"see {log}")
        yield Served(base, proc.pid)
    finally:
        stop(proc, grace=15)
