"""Fixtures of the integration tests that more than one module uses."""

from __future__ import annotations

import secrets

import pytest

from headcount.presence import MemoryPresence
from headcount.presence.redis import RedisPresence
from headcount.runtime import Runtime


@pytest.fixture(params=["memory", "redis"])
def live_runtime(runtime: Runtime, request: pytest.FixtureRequest) -> Runtime:
    """`runtime` with each presence engine in turn, so both are held to the same behaviour.

    The `runtime` fixture closes whichever engine is installed here.
    """
    if request.param == "redis":
        url: str = request.getfixturevalue("redis_url")
        runtime.presence = RedisPresence(url, prefix=f"hctest-{secrets.token_hex(6)}")
    else:
        runtime.presence = MemoryPresence()
    return runtime
