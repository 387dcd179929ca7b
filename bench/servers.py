"""A `headcount serve --workers N` process for the benchmarks (N processes, one port)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Served:
    base: str
    pid: int  # the uvicorn process (with one worker, the one that serves)


@contextmanager
def serve(
    database_url: str, *, workers: int, log: Path, extra_env: Mapping[str, str] | None = None
) -> Iterator[Served]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADCOUNT_")}
    env.update(
        {
            "HEADCOUNT_DATABASE_URL": database_url,
            "HEADCOUNT_ENV": "test",
            "HEADCOUNT_HOLD_TTL": "3600",
            # The benchmark measures admission, not the per-user quota: lift it.
            "HEADCOUNT_MAX_PENDING_ORDERS_PER_USER": "1000000",
            **(extra_env or {}),
        }
    )
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "headcount",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(workers),
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited early; see {log}")
            try:
                if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not ready; see {log}")
            time.sleep(0.2)
        yield Served(base, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
