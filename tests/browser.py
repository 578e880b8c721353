"""A real browser for the tests of tminus's web pages: Playwright for Python driving
Debian's Chromium (`playwright install` cannot download a browser here, and need not:
`scripts/test-prereqs` installs Debian's). Registered in conftest.py, so any test can
ask for `chromium` (one browser per session) or `browser_context` (a fresh profile per
test: its own storage, clock and permissions).

Chromium missing fails the test that needs it: never skipped.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, sync_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run"]
ARTIFACTS = Path(__file__).parent / "artifacts"     # screenshots for a person; git-ignored


def chromium_path() -> str:
    found = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if found is None:
        pytest.fail("Chromium not found: `apt-get install chromium` (scripts/test-prereqs does)")
    return found


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def browser_context(chromium: Browser) -> Iterator[BrowserContext]:
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    yield context
    context.close()
