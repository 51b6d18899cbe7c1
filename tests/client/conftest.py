"""Client test helpers: event collectors, a transport factory, and a TCP relay to cut.

The relay (:class:`Relay`) sits between a client and the real server on loopback so a test
can make "the server" drop every connection, or black-hole traffic (a half-open link),
without touching the server's code.  Every async client test runs twice, on the stock
loop and on uvloop (what ``chat connect`` uses), through the ``pytest_asyncio_loop_factories``
hook (pytest-asyncio >= 1.4).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import uvloop

from chat.app import ChatServer
from chat.client.model import ChatEvent
from chat.client.transports import Transport, make_transport

WAIT = 8.0  # seconds: the longest a test waits for something that should happen


async def wait_until(predicate: Callable[[], bool], timeout: float = WAIT,  # noqa: ASYNC109
                     what: str = "condition") -> None:
    """Poll ``predicate`` every 10 ms; fail the test if it is still false after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


class Collector:
    """Everything a transport reported: events, notices, states."""

    def __init__(self) -> None:
        self.events: list[ChatEvent] = []
        self.notices: list[str] = []
        self.states: list[str] = []

    def texts(self, room: str = "lobby", kind: str = "message") -> list[str]:
        return [e.text for e in self.events if e.room == room and e.kind == kind]

    def private(self) -> list[tuple[str, str, str]]:
        return [(e.nick, e.to, e.text) for e in self.events if e.to]


class Relay:
    """A loopback TCP relay to ``port`` that a test can cut or freeze."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.port = 0
        self.dead: set[asyncio.StreamWriter] = set()  # black-holed: bytes vanish for good
        self.refusing = False   # True: new connections are reset at once (server down)
        self.pairs: list[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = []
        self.tasks: set[asyncio.Task[None]] = set()
        self.server: asyncio.Server | None = None
        self.accepted = 0

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self.port

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self.refusing:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.transport.abort()
            return
        self.pairs.append((writer, up_writer))
        for src, dst, pair in ((reader, up_writer, writer), (up_reader, writer, writer)):
            task = asyncio.get_running_loop().create_task(self._pump(src, dst, pair))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter,
                    pair: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                if pair not in self.dead:
                    dst.write(data)
        except (OSError, ConnectionError):
            pass
        finally:
            dst.transport.abort()

    def blackhole(self) -> None:
        """Make every current connection a dead link: open, but nothing gets through, ever.

        (What a half-open TCP connection looks like; new connections work normally.)
        """
        self.dead.update(a for a, _b in self.pairs)

    def drop(self) -> None:
        """Abort every relayed connection, both sides (new ones are still accepted)."""
        pairs, self.pairs = self.pairs, []
        for a, b in pairs:
            a.transport.abort()
            b.transport.abort()

    async def close(self) -> None:
        self.drop()
        if self.server is not None:
            self.server.close()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


MakeClient = Callable[..., Awaitable[tuple[Transport, Collector]]]
MakeRelay = Callable[[int], Awaitable[Relay]]


@pytest.fixture
async def make_client() -> AsyncIterator[MakeClient]:
    """Start transports (fast test timings); close them all after the test."""
    started: list[Transport] = []

    async def make(app: ChatServer, mode: str, nick: str, *, irc_port: int | None = None,
                   http_port: int | None = None, room: str | None = "lobby",
                   **options: Any) -> tuple[Transport, Collector]:
        got = Collector()
        settings: dict[str, Any] = {"interval": 0.05, "wait": 2.0, "backoff": 0.05,
                                    "backoff_max": 0.3, "timeout": 3.0}
        if mode == "udp":  # keepalives (and so the notice of a dead path) come quickly
            settings["keepalive"] = 0.1
        settings.update(options)
        transport = make_transport(
            mode, host="127.0.0.1", irc_port=irc_port or app.irc_port,
            http_port=http_port or app.http_port, nick=nick, on_event=got.events.append,
            on_state=got.states.append, on_notice=got.notices.append, **settings)
        started.append(transport)
        await transport.start()
        if room:
            await transport.join(room)
        return transport, got

    yield make
    for transport in started:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(transport.close(), 3.0)


@pytest.fixture
async def relays() -> AsyncIterator[MakeRelay]:
    """Start relays to given ports; close them after the test."""
    made: list[Relay] = []

    async def make(port: int) -> Relay:
        relay = Relay(port)
        await relay.start()
        made.append(relay)
        return relay

    yield make
    for relay in made:
        await relay.close()


def pytest_asyncio_loop_factories(config: pytest.Config,
                                  item: pytest.Item) -> dict[str, Callable[[], Any]]:
    """Run every async client test on both loops: the stock one and uvloop."""
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
