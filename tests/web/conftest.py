"""Playwright driving Debian's Chromium (``/usr/bin/chromium``), one browser per test.

Playwright's own browser download is not used: the browser is launched through its
``executable_path`` option.  Without Chromium (or Playwright) the tests skip, unless
``CHAT_REQUIRE_ALL`` or ``CHAT_REQUIRE_BROWSER`` is set (CI sets the first, so there a
missing browser fails instead).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import missing

CHROMIUM = Path(os.environ.get("CHAT_CHROMIUM", "/usr/bin/chromium"))
HAVE_CHROMIUM = CHROMIUM.exists()
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]
TIMEOUT_MS = 10_000  # the longest any step waits


@pytest.fixture
async def browser_page() -> AsyncIterator[tuple[Any, list[str]]]:
    """A fresh page and the list its console errors (and page errors) are collected in."""
    if not HAVE_CHROMIUM or os.environ.get("CHAT_NO_BROWSER"):
        missing(f"no browser at {CHROMIUM}", "CHAT_REQUIRE_BROWSER")
    try:
        import playwright.async_api as playwright_api
    except ImportError:
        missing("Playwright for Python is not installed", "CHAT_REQUIRE_BROWSER")
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(TIMEOUT_MS)
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
            yield page, errors
        finally:
            await browser.close()
