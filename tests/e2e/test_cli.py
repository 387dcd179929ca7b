"""The `headcount` command as a new user runs it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

from support.servers import free_port, server_env


def headcount(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "headcount", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_serve_demo_on_the_embedded_default(tmp_path: Path) -> None:
    """No configuration at all: a SQLite file in the working directory, the demo loaded."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADCOUNT_")}
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "headcount", "serve", "--demo", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        printed = log.read_text()
        assert f"Headcount on {base}" in printed
        token = re.search(r"attendee token\s+(\S+)", printed)
        assert token is not None, printed
        capacity = httpx.get(f"{base}/api/v1/events/evt_demo/capacity").json()
        assert capacity["tickets"]["total"] > 0
        ticket_type = capacity["tickets"]["ticket_types"][0]
        bought = httpx.post(
            f"{base}/api/v1/orders",
            json={
                "event_id": "evt_demo",
                "items": [{"ticket_type_id": ticket_type["id"], "quantity": 1}],
            },
            headers={"Authorization": f"Bearer {token.group(1)}"},
        )
        assert bought.status_code == 201, bought.text
        assert (tmp_path / "headcount.db").exists()
    finally:
        proc.terminate()
        proc.wait(10)


def test_demo_token_sweep_and_reconcile_commands(tmp_path: Path) -> None:
    env = server_env(f"sqlite:///{tmp_path / 'cli.db'}")
    first = headcount("demo", cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    assert "created" in first.stdout
    again = headcount("demo", cwd=tmp_path, env=env)
    assert "already present" in again.stdout
    minted = headcount("token", "--sub", "alice", "--role", "organizer", cwd=tmp_path, env=env)
    assert minted.stdout.count(".") == 2
    assert "expired 0 holds" in headcount("sweep", cwd=tmp_path, env=env).stdout
    clean = headcount("reconcile", cwd=tmp_path, env=env)
    assert clean.returncode == 0
    assert "no drift" in clean.stdout


def test_reconcile_reports_and_fixes_drift(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "drift.db"
    env = server_env(f"sqlite:///{db}")
    assert headcount("demo", cwd=tmp_path, env=env).returncode == 0
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE ticket_types SET quantity_reserved = 3 WHERE id = 'tt_demo_regular'")
    drifted = headcount("reconcile", cwd=tmp_path, env=env)
    assert drifted.returncode == 1
    assert "tt_demo_regular" in drifted.stdout
    assert "counter 3, rows say 0" in drifted.stdout
    assert headcount("reconcile", "--fix", cwd=tmp_path, env=env).returncode == 0
    assert headcount("reconcile", cwd=tmp_path, env=env).returncode == 0


def test_production_mode_refuses_the_development_secret(tmp_path: Path) -> None:
    env = {**server_env(f"sqlite:///{tmp_path / 'p.db'}"), "HEADCOUNT_ENV": "production"}
    refused = headcount("migrate", cwd=tmp_path, env=env)
    assert refused.returncode == 2
    assert "development secret" in refused.stderr
