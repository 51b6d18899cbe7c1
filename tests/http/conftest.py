"""HTTP tests run on both event loops (raw client sockets are closed by tests/conftest.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
import uvloop


def pytest_asyncio_loop_factories(config: pytest.Config,
                                  item: pytest.Item) -> dict[str, Callable[[], Any]]:
    """Run every async HTTP test on both loops: the stock one and uvloop (what `serve` uses)."""
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
