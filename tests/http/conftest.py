"""Fixtures for the HTTP tests: every raw client socket is closed after each test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import uvloop

from .util import OPEN


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


def pytest_asyncio_loop_factories(config: pytest.Config,
                                  item: pytest.Item) -> dict[str, Callable[[], Any]]:
    """Run every async HTTP test on both loops: the stock one and uvloop (what `serve` uses)."""
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
