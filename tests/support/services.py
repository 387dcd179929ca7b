"""Where the real PostgreSQL and Redis are, and whether a missing one fails or skips.

With HEADCOUNT_TEST_REQUIRE_SERVICES=1 (set by .ci/run) an unreachable service fails the
tests that need it; otherwise they are skipped and the run's summary names them.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
from typing import NoReturn
from urllib.parse import urlsplit

import pytest

POSTGRES_URL = os.environ.get(
    "HEADCOUNT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("HEADCOUNT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REQUIRED = os.environ.get("HEADCOUNT_TEST_REQUIRE_SERVICES", "") not in ("", "0", "false")

# A skip for a missing service carries this mark in its reason: the run's summary counts
# them from the test reports, which reach the controller under pytest-xdist too.
NEEDS = re.compile(r"\[needs ([^\]]+)\]")


def reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), 1
        ):
            return True
    except OSError:
        return False


def missing(service: str, problem: str, *, skip_reason: str) -> NoReturn:
    """Fail (in CI) or skip (on a laptop) a test that needs what is not there.

    Skips are marked with the service, so the run's summary says what was not tested.
    """
    if REQUIRED:
        pytest.fail(f"{problem} and HEADCOUNT_TEST_REQUIRE_SERVICES is set", pytrace=False)
    pytest.skip(f"[needs {service}] {skip_reason}")


def installed(present: bool, program: str, needed_by: str) -> None:
    """Fail (in CI) or skip a test whose own server `program` is not installed here."""
    if not present:
        missing(
            program,
            f"{program} is not installed",
            skip_reason=f"{program} is not installed: {needed_by}",
        )


def need(service: str, url: str, default_port: int) -> None:
    """Fail (in CI) or skip (on a laptop) when the service is not there."""
    if reachable(url, default_port):
        return
    message = f"{service} not reachable at {url}"
    missing(
        service,
        message,
        skip_reason=f"{message}: skipped (start it, or set HEADCOUNT_TEST_POSTGRES_URL/REDIS_URL)",
    )


def need_postgres() -> None:
    need("PostgreSQL", POSTGRES_URL, 5432)


def need_redis() -> None:
    need("Redis", REDIS_URL, 6379)


def engine_env(engine: str) -> dict[str, str]:
    """Server settings for presence on `engine`: "memory" (in-process) or "redis" (the
    shared server, under a key prefix of its own)."""
    if engine != "redis":
        return {}
    need_redis()
    return {
        "HEADCOUNT_REDIS_URL": REDIS_URL,
        "HEADCOUNT_REDIS_KEY_PREFIX": f"hctest-{secrets.token_hex(6)}",
    }
