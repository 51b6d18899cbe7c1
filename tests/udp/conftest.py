"""Fixtures for the UDP tests: every raw client socket is closed after each test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ..http.util import OPEN


@pytest.fixture(autouse=True)
async def close_clients() -> AsyncIterator[None]:
    """Close the test's client sockets (before the server fixture shuts down)."""
    yield
    while OPEN:
        writer = OPEN.pop()
        writer.close()
        try:
            await writer.wait_closed()
        except (ConnectionError, OSError):
            pass
