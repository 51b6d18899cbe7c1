"""Memory per idle push connection (WebSocket or SSE) of `chat serve`, or of a reference server.

Starts the server on free loopback ports (pinned with ``--server-cpu``), with its defaults:
heartbeats on (WebSocket Ping every 25 s of silence, answered by the clients; SSE comment
heartbeats every 15 s), limits on.  Then:

1. ``chat serve``: creates N API sessions (``POST /api/sessions`` on one keep-alive connection,
   joining one of ``--rooms`` rooms each) and reads the server's RSS: what a session (its user,
   inbox and membership) costs;
2. opens one WebSocket (``--transport ws``, a join frame for its room) or one SSE stream
   (``--transport sse``, ``GET /api/rooms/<room>/events``) per session, reads the RSS again,
   holds them ``--hold`` seconds with the heartbeats running, reads it once more.

``--server websockets`` (or ``aiohttp``) measures :mod:`ws_ref` instead: WebSockets only, no
sessions.  The clients are light asyncio protocols in this process (a separate process from
the server: together they would exceed the 20,000 descriptors one process may hold); they
discard what they read and answer Pings.  Bounded: N connections, the hold, then everything is
closed and the server stopped.

    python benchmarks/ws_idle.py --connections 19000 --transport ws
    python benchmarks/ws_idle.py --connections 19000 --transport sse
    python benchmarks/ws_idle.py --connections 19000 --server websockets
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import orjson
import psutil
from websockets.frames import Frame, Opcode

from chat.runtime import free_ports, raise_fd_limit

KIB = 1024
HERE = Path(__file__).resolve().parent


class Sink(asyncio.Protocol):
    """A client socket that reads and discards everything, answering WebSocket Pings."""

    def __init__(self, ws: bool = True) -> None:
        self.transport: asyncio.Transport | None = None
        self.head = asyncio.get_running_loop().create_future()
        self.buffer = b""
        self.ws = ws
        self.pings = 0
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.head.done():
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            self.head.set_result(self.buffer.split(b" ", 2)[1])
            self.buffer = self.buffer[end + 4:]
        if not self.ws:
            self.buffer = b""  # SSE: events and comment heartbeats, discarded
            return
        self._frames()

    def _frames(self) -> None:
        buf = self.buffer
        while len(buf) >= 2:
            opcode, length, head = buf[0] & 0x0F, buf[1] & 0x7F, 2
            if length == 126:
                if len(buf) < 4:
                    break
                length, head = int.from_bytes(buf[2:4], "big"), 4
            elif length == 127:
                if len(buf) < 10:
                    break
                length, head = int.from_bytes(buf[2:10], "big"), 10
            if len(buf) < head + length:
                break
            if opcode == Opcode.PING and self.transport is not None:
                self.pings += 1
                pong = Frame(Opcode.PONG, bytes(buf[head:head + length]))
                self.transport.write(pong.serialize(mask=True))
            buf = buf[head + length:]
        self.buffer = buf


async def sessions(port: int, count: int, prefix: str, rooms: int) -> list[str]:
    """Create ``count`` sessions, each joining room ``<prefix>room<i % rooms>``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def call(method: str, path: str, body: dict[str, object],
                   token: str | None = None) -> dict[str, object]:
        data = orjson.dumps(body)
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        writer.write(f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}"
                     f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
        head = await reader.readuntil(b"\r\n\r\n")
        status = head.split(b" ", 2)[1]
        lower = head.lower()
        length = int(lower.split(b"content-length: ")[1].split(b"\r\n")[0]) \
            if b"content-length: " in lower else 0
        payload = await reader.readexactly(length) if length else b"{}"
        if not status.startswith(b"2"):
            raise RuntimeError(f"{method} {path}: {status.decode()} {payload[:200]!r}")
        result: dict[str, object] = orjson.loads(payload) if payload.strip() else {}
        return result

    tokens = []
    for i in range(count):
        token = str((await call("POST", "/api/sessions", {"nick": f"{prefix}{i}"}))["token"])
        await call("POST", f"/api/rooms/{prefix}room{i % rooms}/join", {}, token)
        tokens.append(token)
    writer.close()
    return tokens


async def open_push(port: int, token: str | None, room: str, transport: str,
                    deflate: bool = False) -> Sink:
    """One WebSocket (with a join frame) or one SSE stream, set up and answered."""
    loop = asyncio.get_running_loop()
    _, sink = await loop.create_connection(lambda: Sink(transport == "ws"), "127.0.0.1", port)
    assert sink.transport is not None
    if transport == "sse":
        sink.transport.write(f"GET /api/rooms/{room}/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                             f"Authorization: Bearer {token}\r\n\r\n".encode())
    else:
        offer = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" \
            if deflate else ""
        path = f"/api/ws?token={token}" if token else "/"
        sink.transport.write((
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{offer}\r\n").encode())
    status = await asyncio.wait_for(sink.head, 30)
    assert status in (b"101", b"200"), status
    if transport == "ws":
        join = orjson.dumps({"type": "join", "room": room})
        sink.transport.write(Frame(Opcode.TEXT, join).serialize(mask=True))
    return sink


def rss(proc: psutil.Process) -> int:
    return int(proc.memory_info().rss)


def start_server(args: argparse.Namespace) -> tuple[subprocess.Popen[bytes], int]:
    irc_port, http_port = free_ports(2)
    if args.server == "ours":
        cmd = [sys.executable, "-m", "chat", "serve", "--host", "127.0.0.1",
               "--irc-port", str(irc_port), "--http-port", str(http_port),
               "--log-level", "warning"]
        if args.deflate:
            cmd.append("--ws-deflate")
    else:
        cmd = [sys.executable, str(HERE / "ws_ref.py"), "--impl", args.server,
               "--port", str(http_port)]
    if args.server_cpu is not None:
        cmd = ["taskset", "-c", str(args.server_cpu), *cmd]
    env = {**os.environ, "PYTHONPATH": f"{HERE.parent}{os.pathsep}"
           f"{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.Popen(cmd, env=env), http_port


async def connect_all(port: int, tokens: list[str | None], rooms: list[str],
                      transport: str, deflate: bool, concurrency: int) -> list[Sink]:
    sem = asyncio.Semaphore(concurrency)

    async def one(token: str | None, room: str) -> Sink:
        async with sem:
            return await open_push(port, token, room, transport, deflate)

    return list(await asyncio.gather(*(one(t, r) for t, r in zip(tokens, rooms,
                                                                    strict=True))))


async def measure(args: argparse.Namespace) -> dict[str, object]:
    server, http_port = start_server(args)
    ours = args.server == "ours"
    try:
        proc = psutil.Process(server.pid)
        if not ours or args.server_cpu is not None:  # taskset execs: the pid stays the same
            proc = psutil.Process(server.pid)
        for _ in range(150):
            try:
                (await asyncio.open_connection("127.0.0.1", http_port))[1].close()
                break
            except OSError:
                await asyncio.sleep(0.1)
        n = args.connections
        # Warm the allocator and the code paths with a few connections first.
        warm_tokens: list[str | None] = list(await sessions(http_port, 50, "warm", 1)) \
            if ours else [None] * 50
        keep = await connect_all(http_port, warm_tokens, ["warmroom0"] * 50, args.transport,
                                 args.deflate, 50)
        await asyncio.sleep(1.0)
        base = rss(proc)
        tokens: list[str | None] = list(await sessions(http_port, n, "idle", args.rooms)) \
            if ours else [None] * n
        await asyncio.sleep(1.0)
        after_sessions = rss(proc)
        started = time.perf_counter()
        sinks = await connect_all(http_port, tokens,
                                  [f"idleroom{i % args.rooms}" for i in range(n)],
                                  args.transport, args.deflate, args.concurrency)
        elapsed = time.perf_counter() - started
        await asyncio.sleep(args.settle)
        after_connect = rss(proc)
        cpu0 = sum(proc.cpu_times()[:2])
        await asyncio.sleep(args.hold)
        cpu1 = sum(proc.cpu_times()[:2])
        after_hold = rss(proc)
        held = sum(not s.lost for s in sinks)
        result = {"server": args.server, "transport": args.transport, "connections": n,
                  "held": held, "lost": n - held, "deflate": args.deflate, "rooms": args.rooms,
                  "hold_s": args.hold,
                  "pings_answered": sum(s.pings for s in sinks),
                  "session_kib": round((after_sessions - base) / n / KIB, 2),
                  "connection_kib": round((after_connect - after_sessions) / n / KIB, 2),
                  "total_kib": round((after_hold - base) / n / KIB, 2),
                  "connects_per_s": round(n / elapsed),
                  "server_cpu_hold_pct": round(100 * (cpu1 - cpu0) / args.hold, 2),
                  "server_rss_mib": round(after_hold / KIB / KIB, 1)}
        for sink in sinks + keep:
            if sink.transport is not None:
                sink.transport.abort()
        return result
    finally:
        server.terminate()  # closing 19,000 connections takes a while: wait, then kill
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=3000)
    parser.add_argument("--rooms", type=int, default=100)
    parser.add_argument("--transport", choices=("ws", "sse"), default="ws")
    parser.add_argument("--server", choices=("ours", "websockets", "aiohttp"), default="ours")
    parser.add_argument("--settle", type=float, default=3.0)
    parser.add_argument("--hold", type=float, default=30.0,
                        help="seconds held with heartbeats running, after the settle")
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--server-cpu", type=int, default=None, help="pin the server here")
    parser.add_argument("--deflate", action="store_true")
    parser.add_argument("--json", default=None, help="also write the JSON result here")
    args = parser.parse_args()
    if args.server != "ours" and args.transport != "ws":
        parser.error("the reference servers are WebSocket only")
    raise_fd_limit()
    import uvloop
    result = uvloop.run(measure(args))
    line = json.dumps(result, sort_keys=True)
    if args.json:
        Path(args.json).write_text(line + "\n")
    print(line)
    print(f"{args.server} {args.transport} x{result['held']}: {result['total_kib']} KiB per "
          f"connection after {args.hold:.0f} s held (session {result['session_kib']} + "
          f"connection {result['connection_kib']}), {result['pings_answered']} pings answered, "
          f"lost {result['lost']}", flush=True)


if __name__ == "__main__":
    main()
