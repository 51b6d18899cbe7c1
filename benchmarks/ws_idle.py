"""Memory per idle WebSocket connection of `chat serve`, with and without permessage-deflate.

Starts `python -m chat serve` on free loopback ports (heartbeats and idle reaping off, so
nothing but the connections changes), then:

1. creates N API sessions (``POST /api/sessions`` on one keep-alive connection) and reads the
   server's RSS: what a session (its user and inbox) costs;
2. opens one WebSocket per session, each joining one of ``--rooms`` rooms, and reads the RSS
   again: what the WebSocket itself costs on top.

With ``--deflate`` the server runs with ``--ws-deflate`` and every client offers
permessage-deflate, so each connection carries its compression contexts.  The clients are
light asyncio protocols in this process (they read and discard).  Bounded: N connections,
a few seconds of settling, then everything is closed and the server stopped.

    python benchmarks/ws_idle.py --connections 3000
    python benchmarks/ws_idle.py --connections 3000 --deflate
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time

import orjson
import psutil
from websockets.frames import Frame, Opcode

from chat.runtime import free_ports, raise_fd_limit

KIB = 1024


class Sink(asyncio.Protocol):
    """A client socket that reads and discards everything."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.head = asyncio.get_running_loop().create_future()
        self.buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if not self.head.done():
            self.buffer += data
            if b"\r\n\r\n" in self.buffer:
                self.head.set_result(self.buffer.split(b" ", 2)[1])


async def sessions(port: int, count: int, prefix: str) -> list[str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    tokens = []
    for i in range(count):
        body = orjson.dumps({"nick": f"{prefix}{i}"})
        writer.write(b"POST /api/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        tokens.append(orjson.loads(await reader.readexactly(length))["token"])
    writer.close()
    return tokens


async def open_ws(port: int, token: str, room: str, deflate: bool) -> Sink:
    loop = asyncio.get_running_loop()
    _, sink = await loop.create_connection(Sink, "127.0.0.1", port)
    offer = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" \
        if deflate else ""
    assert sink.transport is not None
    sink.transport.write((
        f"GET /api/ws?token={token} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{offer}\r\n").encode())
    status = await asyncio.wait_for(sink.head, 10)
    assert status == b"101", status
    join = orjson.dumps({"type": "join", "room": room})
    sink.transport.write(Frame(Opcode.TEXT, join).serialize(mask=True))
    return sink


def rss(proc: psutil.Process) -> int:
    return int(proc.memory_info().rss)


async def measure(args: argparse.Namespace) -> dict[str, object]:
    irc_port, http_port = free_ports(2)
    cmd = [sys.executable, "-m", "chat", "serve", "--irc-port", str(irc_port),
           "--http-port", str(http_port), "--ping-interval", "0", "--idle-timeout", "0",
           "--session-timeout", "0", "--flood-burst", "0", "--log-level", "warning",
           "--max-clients", str(args.connections + 500)]
    if args.deflate:
        cmd.append("--ws-deflate")
    server = subprocess.Popen(cmd)  # noqa: ASYNC220 - started once, before any load
    try:
        proc = psutil.Process(server.pid)
        for _ in range(100):
            try:
                (await asyncio.open_connection("127.0.0.1", http_port))[1].close()
                break
            except OSError:
                await asyncio.sleep(0.1)
        warm = await sessions(http_port, 50, "warm")  # warm the allocator and the code paths
        keep = [await open_ws(http_port, t, "warm", args.deflate) for t in warm]
        await asyncio.sleep(1.0)
        base = rss(proc)
        tokens = await sessions(http_port, args.connections, "idle")
        await asyncio.sleep(1.0)
        after_sessions = rss(proc)
        started = time.perf_counter()
        sinks = []
        for i, token in enumerate(tokens):
            sinks.append(await open_ws(http_port, token, f"room{i % args.rooms}",
                                       args.deflate))
        elapsed = time.perf_counter() - started
        await asyncio.sleep(args.settle)
        after_ws = rss(proc)
        n = args.connections
        result = {"connections": n, "deflate": args.deflate, "rooms": args.rooms,
                  "session_kib": round((after_sessions - base) / n / KIB, 2),
                  "websocket_kib": round((after_ws - after_sessions) / n / KIB, 2),
                  "total_kib": round((after_ws - base) / n / KIB, 2),
                  "connects_per_s": round(n / elapsed),
                  "server_rss_mib": round(after_ws / KIB / KIB, 1)}
        for sink in sinks + keep:
            if sink.transport is not None:
                sink.transport.abort()
        return result
    finally:
        server.terminate()
        server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=3000)
    parser.add_argument("--rooms", type=int, default=30)
    parser.add_argument("--settle", type=float, default=3.0)
    parser.add_argument("--deflate", action="store_true")
    args = parser.parse_args()
    raise_fd_limit()
    result = asyncio.run(measure(args))
    print(json.dumps(result))
    print(f"{'with' if args.deflate else 'without'} permessage-deflate: "
          f"{result['websocket_kib']} KiB per WebSocket + {result['session_kib']} KiB per "
          f"session = {result['total_kib']} KiB per connected user")


if __name__ == "__main__":
    main()
