"""Fixtures of the integration tests that more than one module uses."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest

from headcount.presence import MemoryPresence
from headcount.presence.redis import RedisPresence
from headcount.runtime import Runtime
from support.redis_backends import REDIS_BACKENDS, redis_backend_url
from support.runtimes import open_runtime


@pytest.fixture(params=["memory", *REDIS_BACKENDS])
def live_runtime(runtime: Runtime, request: pytest.FixtureRequest) -> Runtime:
    """`runtime` with each presence engine in turn (in-process memory, one Redis, a Redis
    Cluster), so all are held to the same behaviour.

    The `runtime` fixture closes whichever engine is installed here.
    """
    if request.param == "memory":
        runtime.presence = MemoryPresence()
    else:
        url = redis_backend_url(request, request.param)
        runtime.presence = RedisPresence(url, prefix=f"hctest-{secrets.token_hex(6)}")
    return runtime


@pytest.fixture
async def pg(postgres_url: str) -> AsyncIterator[Runtime]:
    """PostgreSQL only, for races: on SQLite the second writer would wait for the first's
    file lock."""
    async with open_runtime(postgres_url) as rt:
        yield rt
