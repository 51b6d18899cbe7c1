"""Fixtures for the whole-process tests: raw client sockets are closed after each test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.http.util import OPEN


@pytest.fixture(autouse=True)
async def close_clients() -> AsyncIterator[None]:
    """Close the test's client sockets on its own loop (a later test's loop cannot)."""
    yield
    while OPEN:
        writer = OPEN.pop()
        writer.close()
        try:
            await writer.wait_closed()
        except (ConnectionError, OSError):
            pass
