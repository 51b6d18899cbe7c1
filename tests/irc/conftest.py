"""A tiny line-oriented IRC test client over a real loopback socket, and its fixture."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import pytest
import uvloop

from chat.app import ChatServer

WAIT = 5.0  # seconds: the longest a test waits for one line (a bound for a stalled CI machine)


class IrcClient:
    """Send lines, wait for lines matching a pattern; every line read is kept in ``seen``."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.seen: list[str] = []

    @classmethod
    async def connect(cls, port: int, *, rcvbuf: int | None = None) -> IrcClient:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:  # a small receive window makes a slow reader fill up fast
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        except OSError:
            sock.close()
            raise
        reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 20)
        return cls(reader, writer)

    def send(self, *lines: str) -> None:
        self.writer.write("".join(line + "\r\n" for line in lines).encode())

    def send_raw(self, data: bytes) -> None:
        self.writer.write(data)

    async def line(self, wait: float = WAIT) -> str:
        """The next line (without CR LF); EOFError at end of stream."""
        raw = await asyncio.wait_for(self.reader.readline(), wait)
        if not raw:
            raise EOFError("connection closed")
        text = raw.decode("utf-8", "replace").rstrip("\r\n")
        self.seen.append(text)
        return text

    async def expect(self, pattern: str, wait: float = WAIT) -> str:
        """Read until a line matches ``pattern`` (re.search); return that line."""
        regex = re.compile(pattern)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            text = await self.line(max(0.01, deadline - loop.time()))
            if regex.search(text):
                return text

    async def lines_until(self, pattern: str, wait: float = WAIT) -> list[str]:
        """All lines up to and including the first one matching ``pattern``."""
        start = len(self.seen)
        await self.expect(pattern, wait)
        return self.seen[start:]

    async def until_closed(self, wait: float = WAIT) -> list[str]:
        """Every line until the server closes the connection; then close ours, as a client
        does on EOF (the server lingers until then, see IrcConnection.finish)."""
        start = len(self.seen)
        try:
            while True:
                await self.line(wait)
        except (EOFError, ConnectionResetError):
            self.writer.close()
            return self.seen[start:]

    async def register(self, nick: str, caps: Iterable[str] = ()) -> list[str]:
        """NICK/USER (with CAP negotiation if ``caps``); the lines up to end of MOTD."""
        caps = list(caps)
        if caps:
            self.send("CAP LS 302", f"NICK {nick}", f"USER {nick} 0 * :{nick} Test",
                      f"CAP REQ :{' '.join(caps)}", "CAP END")
        else:
            self.send(f"NICK {nick}", f"USER {nick} 0 * :{nick} Test")
        return await self.lines_until(r" (376|422) ")

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass


Connect = Callable[..., Awaitable[IrcClient]]


@pytest.fixture
async def irc() -> AsyncIterator[Connect]:
    """``await irc(app, nick=None, caps=(), rcvbuf=None)``: a (registered) client."""
    clients: list[IrcClient] = []

    async def connect(app: ChatServer, nick: str | None = None, caps: Iterable[str] = (),
                      rcvbuf: int | None = None) -> IrcClient:
        client = await IrcClient.connect(app.irc_port, rcvbuf=rcvbuf)
        clients.append(client)
        if nick is not None:
            await client.register(nick, caps)
        return client

    yield connect
    for client in clients:
        await client.close()


def pytest_asyncio_loop_factories(config: pytest.Config,
                                  item: pytest.Item) -> dict[str, Callable[[], Any]]:
    """Run every async IRC test on both loops: the stock one and uvloop (what `serve` uses)."""
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
