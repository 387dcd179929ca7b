"""Headless Chromium for the browser tests: Debian's chromium driven by Playwright.

Playwright's own browser download is not used (and cannot work offline): the tests launch
the system Chromium by path. Without it they skip, saying why; with
HEADCOUNT_TEST_REQUIRE_SERVICES=1 (CI) they fail instead.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from support import services

if TYPE_CHECKING:
    from playwright.sync_api import Browser

CHROMIUM = os.environ.get("HEADCOUNT_TEST_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
WAIT_MS = 10_000  # well above one push (≤ 1 s) or poll (2 s) interval of a page


def chromium_path() -> str:
    """The browser to launch, or skip/fail with the reason it cannot be."""
    problem = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problem = "the playwright package is not installed (pip install -e '.[test]')"
    found = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if problem is None and not found:
        problem = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
    if problem is not None:
        services.missing("Chromium", problem, skip_reason=f"browser tests skipped: {problem}")
    assert found is not None
    return found


def artifact(name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / name


@contextmanager
def launched_chromium() -> Iterator[Browser]:
    """The system Chromium, headless; `expect` waits up to `WAIT_MS`."""
    executable = chromium_path()
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=WAIT_MS)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=ARGS)
        try:
            yield launched
        finally:
            launched.close()
