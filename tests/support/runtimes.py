"""Runtimes the tests open on a database and always close, whatever the test did."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from headcount.config import Settings
from headcount.runtime import Runtime


@asynccontextmanager
async def open_runtime(database_url: str, **settings: Any) -> AsyncIterator[Runtime]:
    """A runtime with test settings (and `settings`) on `database_url`, closed on the way
    out so no pool or presence engine outlives its test."""
    rt = Runtime.from_settings(Settings(database_url=database_url, env="test", **settings))
    try:
        yield rt
    finally:
        await rt.close()
