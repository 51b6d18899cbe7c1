"""Raw-socket HTTP and IRC clients for the HTTP tests (responses parsed by httptools)."""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from typing import Any

import httptools
import orjson

READ_TIMEOUT = 3.0
OPEN: list[asyncio.StreamWriter] = []  # every client socket, closed by the autouse fixture


class Response:
    """One parsed HTTP response."""

    def __init__(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body = b""
        self.complete = False

    def json(self) -> Any:
        return orjson.loads(self.body)

    def __repr__(self) -> str:
        return f"Response({self.status}, {self.body[:200]!r})"


class _Collector:
    """httptools response-parser callbacks collecting complete (and partial) responses."""

    def __init__(self) -> None:
        self.parser: Any = None
        self.done: deque[Response] = deque()
        self.current: Response | None = None

    def on_message_begin(self) -> None:
        self.current = Response()

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self.current is not None
        self.current.headers[name.decode().lower()] = value.decode()

    def on_headers_complete(self) -> None:
        assert self.current is not None
        self.current.status = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        assert self.current is not None
        self.current.body += body

    def on_message_complete(self) -> None:
        assert self.current is not None
        self.current.complete = True
        self.done.append(self.current)
        self.current = None


def build(method: str, path: str, *, body: Any = None, token: str | None = None,
          headers: dict[str, str] | None = None, version: str = "1.1",
          raw_body: bytes | None = None) -> bytes:
    """The bytes of one request (JSON ``body`` gets a Content-Length)."""
    lines = [f"{method} {path} HTTP/{version}", "Host: 127.0.0.1"]
    if token is not None:
        lines.append(f"Authorization: Bearer {token}")
    data = raw_body if raw_body is not None else (
        orjson.dumps(body) if body is not None else None)
    if data is not None:
        lines.append(f"Content-Length: {len(data)}")
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (data or b"")


class Conn:
    """One raw client connection that can pipeline requests and read responses in order."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.collector = _Collector()
        self.parser = httptools.HttpResponseParser(self.collector)
        self.collector.parser = self.parser
        self.raw = b""  # everything received (for byte-level assertions)

    @classmethod
    async def open(cls, port: int, rcvbuf: int = 0) -> Conn:
        if rcvbuf:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
            reader, writer = await asyncio.open_connection(sock=sock)
        else:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        OPEN.append(writer)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def request(self, method: str, path: str, **kwargs: Any) -> Response:
        await self.send(build(method, path, **kwargs))
        return await self.response()

    async def _feed(self) -> None:
        data = await asyncio.wait_for(self.reader.read(65536), READ_TIMEOUT)
        if not data:
            raise ConnectionResetError("server closed the connection")
        self.raw += data
        self.parser.feed_data(data)

    async def response(self) -> Response:
        """The next complete response."""
        while not self.collector.done:
            await self._feed()
        return self.collector.done.popleft()

    async def head_response(self) -> tuple[int, dict[str, str], bytes]:
        """A response to HEAD (no body follows its Content-Length): status, headers, extra."""
        while b"\r\n\r\n" not in self.raw:
            data = await asyncio.wait_for(self.reader.read(65536), READ_TIMEOUT)
            if not data:
                raise ConnectionResetError("server closed the connection")
            self.raw += data
        head, _, rest = self.raw.partition(b"\r\n\r\n")
        self.raw = rest
        lines = head.decode().split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
        return int(lines[0].split()[1]), headers, rest

    async def stream_until(self, marker: bytes) -> bytes:
        """Body bytes of the response in progress (a stream), read until ``marker`` shows."""
        while True:
            current = self.collector.current
            body = current.body if current is not None else b""
            if self.collector.done:
                body = self.collector.done[0].body
            if marker in body:
                return body
            await self._feed()

    async def closed(self) -> bool:
        """True once the server has closed the connection (EOF) within the read timeout."""
        try:
            while True:
                data = await asyncio.wait_for(self.reader.read(65536), READ_TIMEOUT)
                if not data:
                    return True
                self.raw += data
                self.parser.feed_data(data)
        except (TimeoutError, ConnectionResetError):
            return False

    async def trickle(self, pieces: list[bytes], interval: float) -> None:
        """Send ``pieces`` one per ``interval`` until the server answers or hangs up."""
        for piece in pieces:
            await self.send(piece)
            try:
                data = await asyncio.wait_for(self.reader.read(65536), interval)
            except TimeoutError:
                continue
            self.raw += data
            if data:
                self.parser.feed_data(data)
            return

    async def still_open(self, seconds: float = 0.1) -> bool:
        """True if nothing (no EOF) arrives for ``seconds``."""
        try:
            data = await asyncio.wait_for(self.reader.read(65536), seconds)
        except TimeoutError:
            return True
        self.raw += data
        return bool(data)

    def close(self) -> None:
        self.writer.close()


async def call(port: int, method: str, path: str, **kwargs: Any) -> Response:
    """One request on a fresh connection."""
    conn = await Conn.open(port)
    try:
        return await conn.request(method, path, **kwargs)
    finally:
        conn.close()


async def new_session(port: int, nick: str, *rooms: str) -> str:
    """Create a session for ``nick``, join ``rooms``; returns the token."""
    resp = await call(port, "POST", "/api/sessions", body={"nick": nick})
    assert resp.status == 201, resp
    token: str = resp.json()["token"]
    for room in rooms:
        joined = await call(port, "POST", f"/api/rooms/{room}/join", token=token)
        assert joined.status == 200, joined
    return token


async def cursor(port: int, token: str, room: str) -> int:
    """The room's current poll cursor (ids are large and run-specific: never guess one)."""
    resp = await call(port, "GET", f"/api/rooms/{room}/messages", token=token)
    assert resp.status == 200, resp
    return int(resp.json()["next"])


async def http_stats(port: int) -> dict[str, Any]:
    resp = await call(port, "GET", "/api/stats")
    assert resp.status == 200
    stats: dict[str, Any] = resp.json()["http"]
    return stats


class Irc:
    """A minimal raw IRC client: send lines, wait for a line matching a predicate."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.lines: list[str] = []

    @classmethod
    async def connect(cls, port: int, nick: str, caps: str = "") -> Irc:
        """Register ``nick`` (negotiating ``caps`` first if given)."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        OPEN.append(writer)
        irc = cls(reader, writer)
        if caps:
            await irc.send(f"CAP REQ :{caps}")
        await irc.send(f"NICK {nick}", f"USER {nick} 0 * :{nick}")
        if caps:
            await irc.expect("CAP", "ACK")
            await irc.send("CAP END")
        await irc.expect(" 001 ")
        return irc

    async def send(self, *lines: str) -> None:
        self.writer.write("".join(line + "\r\n" for line in lines).encode())
        await self.writer.drain()

    async def expect(self, *parts: str) -> str:
        """The next line containing every one of ``parts`` (answers PINGs meanwhile)."""
        while True:
            raw = await asyncio.wait_for(self.reader.readline(), READ_TIMEOUT)
            if not raw:
                raise ConnectionResetError("IRC server closed the connection")
            line = raw.decode().rstrip("\r\n")
            self.lines.append(line)
            if line.startswith("PING"):
                await self.send("PONG" + line[4:])
            if all(p in line for p in parts):
                return line

    def close(self) -> None:
        self.writer.close()
