"""Shared fixtures: a real server on loopback, free ports, tiny limits from the config."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, NoReturn

import pytest
from hypothesis import settings

from chat.app import ChatServer
from chat.config import Config

MakeServer = Callable[..., Awaitable[ChatServer]]

# The property tests check rules, not speed: Hypothesis's default deadline (200 ms per
# example) is a timing assertion that a stalled CI machine fails, as DeadlineExceeded or as
# "Unreliable test timings" when the replay is quick.
settings.register_profile("chat", deadline=None)
settings.load_profile("chat")


async def eventually(check: Callable[[], Any], what: str = "the condition",
                     within: float = 8.0) -> None:
    """Await ``check()`` (sync, or a coroutine: then polled less often, it does I/O) until
    it is truthy; fail naming ``what`` after ``within`` seconds (long: a loaded machine is
    slow, a broken rule never gets there)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = check()
        pause = 0.01
        if asyncio.iscoroutine(result):
            result, pause = await result, 0.05
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(pause)


def missing(reason: str, *also: str) -> NoReturn:
    """A real part this test needs is not on this machine (redis-server, a browser, a
    non-loopback address): skip, except where ``CHAT_REQUIRE_ALL`` (set by .ci/run) or one
    of ``also`` is set, where a missing part fails the test instead of hiding it."""
    if any(os.environ.get(name) for name in ("CHAT_REQUIRE_ALL", *also)):
        pytest.fail(f"required here: {reason}")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
async def close_clients() -> AsyncIterator[None]:
    """Close the raw client sockets a test opened (tests.http.util.OPEN), on its own loop."""
    from tests.http.util import OPEN

    yield
    while OPEN:
        writer = OPEN.pop()
        try:
            writer.close()
            await writer.wait_closed()
        except (ConnectionError, OSError, RuntimeError):  # RuntimeError: another test's loop
            pass


@pytest.fixture
async def make_server() -> AsyncIterator[MakeServer]:
    """Start ChatServers on 127.0.0.1 with free ports; shut them all down afterwards.

    ``wall`` replaces the server's wall clock (event timestamps) for clock-step tests.
    """
    started: list[ChatServer] = []

    async def make(wall: Callable[[], float] = time.time, **overrides: Any) -> ChatServer:
        options: dict[str, Any] = {"host": "127.0.0.1", "irc_port": 0, "http_port": 0,
                                   "shutdown_timeout": 1.0}
        options.update(overrides)
        app = ChatServer(Config(**options), wall=wall)
        await app.start()
        started.append(app)
        return app

    yield make
    for app in started:
        await app.shutdown()


@pytest.fixture
async def server(make_server: MakeServer) -> ChatServer:
    """One server with default limits (except ports)."""
    return await make_server()
