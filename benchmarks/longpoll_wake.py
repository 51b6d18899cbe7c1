#!/usr/bin/env python3
"""longpoll_wake: N long polls held in one room, woken by one message.

Creates N sessions (one keep-alive connection, each session joining the room), opens one
connection per session holding ``GET /api/rooms/<room>/messages?since=<last_id>&wait=30``,
waits until the server holds them all (``--settle``), then POSTs one message and measures:

* **time to last answer**: from the POST being written to the last of the N answers read;
* **server CPU per answer**: the server's CPU from the POST to the last answer, over N;
* every poll answered 200 with the message in it (checked: status and the message's id).

The load is one process (asyncio on uvloop), a separate one from the server.  Bounded:
``--timeout`` for the answers, then everything is closed.  Prints one JSON line and a summary.

    python benchmarks/longpoll_wake.py 127.0.0.1:8080 -n 10000 --pid <pid>
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

import orjson
from benchlib import ServerWatch, emit, own_cpu, parse_target, raise_fd_limit


class Poll(asyncio.Protocol):
    """One held poll; resolves ``answered`` with the whole answer once it is complete."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.answered = asyncio.get_running_loop().create_future()
        self.at = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        head, sep, body = self.buffer.partition(b"\r\n\r\n")
        if not sep or self.answered.done():
            return
        lower = head.lower()
        if b"content-length: " in lower:
            length = int(lower.split(b"content-length: ")[1].split(b"\r\n")[0])
            if len(body) < length:
                return
        self.at = time.monotonic()
        self.answered.set_result(self.buffer)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.answered.done():
            self.answered.set_result(self.buffer)


async def setup(host: str, port: int, n: int, room: str) -> tuple[list[str], int]:
    """N sessions joined to ``room``; their tokens and the room's last id."""
    reader, writer = await asyncio.open_connection(host, port)

    async def call(path: str, body: dict[str, Any], token: str | None = None) -> Any:
        data = orjson.dumps(body)
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        writer.write(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Length: "
                     f"{len(data)}\r\n\r\n".encode() + data)
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        payload = await reader.readexactly(length)
        if not head.split(b" ", 2)[1].startswith(b"2"):
            raise RuntimeError(f"{path}: {head[:40]!r} {payload[:200]!r}")
        return orjson.loads(payload) if payload else {}

    tokens, last_id = [], 0
    for i in range(n):
        token = (await call("/api/sessions", {"nick": f"lp{i}"}))["token"]
        last_id = (await call(f"/api/rooms/{room}/join", {}, token))["last_id"]
        tokens.append(token)
    writer.close()
    return tokens, last_id


async def run(args: argparse.Namespace) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    host, port = parse_target(args.target)
    room = "wake"
    t0 = time.monotonic()
    tokens, last_id = await setup(host, port, args.n + 1, room)
    sender, tokens = tokens[-1], tokens[:-1]
    polls: list[Poll] = []
    sem = asyncio.Semaphore(200)

    async def hold(token: str) -> None:
        async with sem:
            _, p = await loop.create_connection(Poll, host, port)
            assert p.transport is not None
            p.transport.write(f"GET /api/rooms/{room}/messages?since={last_id}&wait=30 "
                              f"HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}"
                              "\r\n\r\n".encode())
            polls.append(p)

    await asyncio.gather(*(hold(t) for t in tokens))
    setup_s = time.monotonic() - t0
    await asyncio.sleep(args.settle)
    early = sum(p.answered.done() for p in polls)
    watch = ServerWatch([int(p) for p in args.pid.split(",")] if args.pid else None)
    _, post = await asyncio.open_connection(host, port)
    body = orjson.dumps({"text": "wake up"})
    cpu0, load0 = watch.cpu(), own_cpu()
    sent = time.monotonic()
    post.write(f"POST /api/rooms/{room}/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               f"Authorization: Bearer {sender}\r\nContent-Length: {len(body)}\r\n\r\n"
               .encode() + body)
    done, _pending = await asyncio.wait([p.answered for p in polls], timeout=args.timeout)
    cpu1, load1 = watch.cpu(), own_cpu()
    good = sum(1 for p in polls if p.answered.done() and p.buffer.startswith(b"HTTP/1.1 200")
               and b'"wake up"' in p.buffer)
    last = max((p.at for p in polls if p.at), default=sent)
    for p in polls:
        if p.transport is not None:
            p.transport.abort()
    post.close()
    n = len(polls)
    return {"bench": "longpoll_wake", "target": args.target, "held": n,
            "answered_before_message": early, "answered_ok": good, "all_ok": good == n,
            "setup_s": round(setup_s, 2),
            "last_answer_ms": round(1000 * (last - sent), 2),
            "server_cpu_us_per_answer": round((cpu1 - cpu0) * 1e6 / max(1, good), 2)
            if args.pid else None,
            "load_cpu_ms": round(1000 * (load1 - load0), 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("target", help="the HTTP port as host:port")
    ap.add_argument("-n", type=int, default=10_000, help="long polls held")
    ap.add_argument("--settle", type=float, default=2.0)
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("--pid", default=None)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    raise_fd_limit()
    import uvloop
    r = uvloop.run(run(args))
    emit(r, f"longpoll_wake {args.target}: {r['answered_ok']}/{r['held']} answered, last "
            f"after {r['last_answer_ms']} ms, {r['server_cpu_us_per_answer']} µs server CPU "
            "per answer", args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
