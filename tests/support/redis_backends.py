"""The Redis shapes the presence suite runs on: one server, and a 3+3 Redis Cluster.

Tests that hold presence to its contract take a backend from `REDIS_BACKENDS` and turn it
into a URL with `redis_backend_url`; the cluster is the session's private one
(`redis_cluster` in tests/conftest.py), so no test depends on a cluster being installed
beforehand.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from headcount.presence.redis import RedisPresence

REDIS_BACKENDS = [
    pytest.param("redis", id="redis", marks=pytest.mark.redis),
    pytest.param("redis-cluster", id="redis-cluster", marks=pytest.mark.redis),
]


def redis_backend_url(request: pytest.FixtureRequest, backend: str) -> str:
    """`redis://…` of the shared server, or `redis+cluster://…` of the private cluster."""
    url: str = request.getfixturevalue(
        "redis_cluster_url" if backend == "redis-cluster" else "redis_url"
    )
    return url


@asynccontextmanager
async def redis_engine(url: str, prefix: str) -> AsyncIterator[RedisPresence]:
    """A Redis presence engine under a key prefix of its own (`<prefix>-<random>`, so
    parallel runs never meet), closed afterwards."""
    engine = RedisPresence(url, prefix=f"{prefix}-{secrets.token_hex(6)}")
    try:
        yield engine
    finally:
        await engine.close()
