"""Headless Chromium for the browser tests: Debian's chromium driven by Playwright.

Playwright's own browser download is not used (and cannot work offline): the tests launch
the system Chromium by path. Without it they skip, saying why; with
HEADCOUNT_TEST_REQUIRE_SERVICES=1 (CI) they fail instead.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from support import services

CHROMIUM = os.environ.get("HEADCOUNT_TEST_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


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
