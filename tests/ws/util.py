"""WebSocket test clients: the ``websockets`` library's, and a raw one that never answers pings.

:class:`RawWs` writes the handshake itself and parses frames with the library's sans-I/O
client protocol, but sends nothing the test does not ask for: no Pong, no close answer, and
it can stop reading altogether.  That is what a dead or slow peer looks like.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import OPEN as WS_OPEN
from websockets.uri import parse_uri

from ..http.util import OPEN, READ_TIMEOUT

KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def ws_url(port: int, token: str | None = None) -> str:
    return f"ws://127.0.0.1:{port}/api/ws" + (f"?token={token}" if token else "")


async def open_ws(port: int, token: str, **options: Any) -> ClientConnection:
    """A library client (answers pings itself); it has read the hello frame."""
    ws = await connect(ws_url(port, token), open_timeout=READ_TIMEOUT, ping_interval=None,
                       **options)
    hello = orjson.loads(await asyncio.wait_for(ws.recv(), READ_TIMEOUT))
    assert hello["type"] == "hello", hello
    return ws


async def request(ws: ClientConnection, frame: dict[str, Any]) -> list[dict[str, Any]]:
    """Send ``frame`` with a ref; every frame received up to and including its answer."""
    ref = frame.setdefault("ref", f"r{id(frame)}")
    await ws.send(orjson.dumps(frame).decode())
    got = []
    while True:
        data = orjson.loads(await asyncio.wait_for(ws.recv(), READ_TIMEOUT))
        got.append(data)
        if data.get("ref") == ref:
            return got


async def next_event(ws: ClientConnection, kind: str = "message") -> dict[str, Any]:
    """The next event frame of ``kind`` (control frames and other kinds are skipped)."""
    while True:
        data = orjson.loads(await asyncio.wait_for(ws.recv(), READ_TIMEOUT))
        if data.get("kind") == kind:
            return data


class RawWs:
    """A hand-driven WebSocket client over a real socket (see the module docstring)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.proto = ClientProtocol(parse_uri("ws://127.0.0.1/"), state=WS_OPEN,
                                    max_size=None)
        self.status = 0
        self.head = b""
        self.frames: list[Frame] = []

    @classmethod
    async def open(cls, port: int, path: str, *, rcvbuf: int = 0, version: str = "13",
                   key: str | None = KEY, host: str = "127.0.0.1") -> RawWs:
        """Connect and send a handshake for ``path``; read the answer's head."""
        sock = socket.socket()
        if rcvbuf:  # a small receive window makes a slow reader fill up fast
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, port))
        reader, writer = await asyncio.open_connection(sock=sock)
        OPEN.append(writer)
        raw = cls(reader, writer)
        lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Upgrade: websocket",
                 "Connection: Upgrade", f"Sec-WebSocket-Version: {version}"]
        if key is not None:
            lines.append(f"Sec-WebSocket-Key: {key}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
        raw.head = head
        raw.status = int(head.split(b" ", 2)[1])
        return raw

    async def body(self) -> Any:
        """The JSON body of a refused handshake."""
        length = int(next(line.split(b":")[1] for line in self.head.split(b"\r\n")
                          if line.lower().startswith(b"content-length")))
        return orjson.loads(await self.reader.readexactly(length))

    def send_frame(self, opcode: Opcode, data: bytes, fin: bool = True) -> None:
        self.writer.write(Frame(opcode, data, fin).serialize(mask=True))

    def send_json(self, frame: dict[str, Any]) -> None:
        self.send_frame(Opcode.TEXT, orjson.dumps(frame))

    async def frame(self) -> Frame:
        """The next frame from the server (ConnectionResetError at EOF)."""
        while not self.frames:
            data = await asyncio.wait_for(self.reader.read(65536), READ_TIMEOUT)
            if not data:
                raise ConnectionResetError("server closed the connection")
            self.proto.receive_data(data)
            self.frames.extend(e for e in self.proto.events_received()
                               if isinstance(e, Frame))
        return self.frames.pop(0)

    async def json(self) -> Any:
        """The next text frame, decoded."""
        while True:
            frame = await self.frame()
            if frame.opcode is Opcode.TEXT:
                return orjson.loads(frame.data)

    async def close_frame(self) -> tuple[int, str]:
        """Read until the server's close frame: its code and reason."""
        while True:
            frame = await self.frame()
            if frame.opcode is Opcode.CLOSE:
                close = self.proto.close_rcvd
                assert close is not None
                return close.code, close.reason
