"""Playwright driving Debian's Chromium (``/usr/bin/chromium``), one browser per test.

Playwright's own browser download is not used: the browser is launched through its
``executable_path`` option.  Without Chromium the tests skip, unless ``CHAT_REQUIRE_BROWSER``
is set (CI sets it, so there a missing browser fails instead).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ..http.util import OPEN

CHROMIUM = Path(os.environ.get("CHAT_CHROMIUM", "/usr/bin/chromium"))
HAVE_CHROMIUM = CHROMIUM.exists()
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]
TIMEOUT_MS = 10_000  # the longest any step waits


@pytest.fixture
async def browser_page() -> AsyncIterator[tuple[Any, list[str]]]:
    """A fresh page and the list its console errors (and page errors) are collected in."""
    if not HAVE_CHROMIUM or os.environ.get("CHAT_NO_BROWSER"):
        if os.environ.get("CHAT_REQUIRE_BROWSER"):
            pytest.fail(f"no browser at {CHROMIUM}")
        pytest.skip(f"no browser at {CHROMIUM}")
    playwright_api = pytest.importorskip("playwright.async_api")
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


@pytest.fixture(autouse=True)
async def close_clients() -> AsyncIterator[None]:
    """Close the test's raw client sockets (before the server fixture shuts down)."""
    yield
    while OPEN:
        writer = OPEN.pop()
        writer.close()
        try:
            await writer.wait_closed()
        except (ConnectionError, OSError):
            pass
