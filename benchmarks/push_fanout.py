#!/usr/bin/env python3
"""push_fanout: the fan-out of fanout.py over WebSocket or SSE, against `chat serve` or a reference.

U users in one room, each sending one message per second (open loop, evenly paced, the
scheduled send time in the text), every member receiving every other member's message:

* ``--transport ws`` against ``chat serve``: an API session per user, its WebSocket
  (``/api/ws``), a ``join`` frame, then ``say`` frames; against ``--server websockets`` or
  ``aiohttp`` (:mod:`ws_ref`): a WebSocket each, the same ``say`` frames broadcast as they are;
* ``--transport sse`` (``chat serve`` only): each user's SSE stream of the room and its own
  keep-alive HTTP connection to POST its messages.

The load is one process (asyncio on uvloop): members count delivered messages with
``bytes.count`` on each block (C speed); ``--probes`` members also parse the send time of
every message they get for the latency histogram (from the scheduled send time, so no
coordinated omission).  Server CPU is charged from the end of the set-up to the end of the
drain, over every delivery.  Prints one JSON line and a summary.

    python benchmarks/push_fanout.py --transport ws --users 1000 --pid <pid> 127.0.0.1:8080
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from typing import Any

import orjson
from benchlib import ServerWatch, emit, own_cpu, parse_target, raise_fd_limit
from hdrh.histogram import HdrHistogram
from websockets.frames import Frame, Opcode
from ws_idle import Sink, sessions

LAT_MAX_US = 120_000_000
STAMP = re.compile(rb'"text":"(\d+) ')  # the scheduled send time (ns) in a message's text


class Member(Sink):
    """A receiving client: counts the messages in each block, times them if a probe."""

    def __init__(self, ws: bool, marker: bytes, hist: HdrHistogram | None) -> None:
        super().__init__(ws)
        self.marker = marker
        self.hist = hist
        self.got = 0

    def data_received(self, data: bytes) -> None:
        if not self.head.done():
            super().data_received(data)
            return
        self.got += data.count(self.marker)  # a marker split across reads is rare: counted
        if self.hist is not None:            # by the totals check as a shortfall, not hidden
            now = time.monotonic_ns()
            for m in STAMP.finditer(data):
                self.hist.record_value(max(1, (now - int(m.group(1))) // 1000))


class Poster(asyncio.Protocol):
    """An SSE user's own keep-alive HTTP connection for its POSTs (answers discarded)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    host, port = parse_target(args.target)
    ours = args.server == "ours"
    n = args.users
    hist = HdrHistogram(1, LAT_MAX_US, 3)
    tokens: list[str | None] = list(await sessions(port, n, "p", 1)) if ours else [None] * n
    room = "proom0"
    marker = b"event: message\n" if args.transport == "sse" else (
        b'"kind":"message"' if ours else b'{"type":"say"')
    members: list[Member] = []
    posters: list[Poster] = []
    sem = asyncio.Semaphore(100)

    async def one(i: int) -> None:
        async with sem:
            _, m = await loop.create_connection(
                lambda: Member(args.transport == "ws", marker, hist if i < args.probes
                               else None), host, port)
            assert m.transport is not None
            if args.transport == "sse":
                m.transport.write(f"GET /api/rooms/{room}/events HTTP/1.1\r\nHost: "
                                  f"127.0.0.1\r\nAuthorization: Bearer {tokens[i]}\r\n\r\n"
                                  .encode())
                _, p = await loop.create_connection(Poster, host, port)
                posters.append(p)
            else:
                path = f"/api/ws?token={tokens[i]}" if ours else "/"
                m.transport.write((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: "
                                   "websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version:"
                                   " 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
                                  .encode())
            status = await asyncio.wait_for(m.head, 30)
            assert status in (b"101", b"200"), status
            if args.transport == "ws":
                m.transport.write(Frame(Opcode.TEXT, orjson.dumps(
                    {"type": "join", "room": room})).serialize(mask=True))
            members.append(m)

    t0 = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(n)))
    setup_s = time.monotonic() - t0
    await asyncio.sleep(args.settle)
    for m in members:
        m.got = 0  # joins and acks of the set-up are not deliveries
    watch = ServerWatch([int(p) for p in args.pid.split(",")] if args.pid else None)
    cpu0, load0 = watch.cpu(), own_cpu()
    start = time.monotonic_ns() + 100_000_000
    period = int(1e9 / args.rate)
    end = start + int(args.duration * 1e9)
    pad = "x" * max(0, args.size - 20)
    sent = [0] * n
    idx = cycle = 0
    now = time.monotonic_ns()
    while now < end:
        while True:
            due = start + cycle * period + idx * period // n
            if due > now or due >= end:
                break
            text = f"{due} {pad}"
            if args.transport == "sse":
                body = orjson.dumps({"text": text})
                t = posters[idx].transport
                assert t is not None
                t.write(f"POST /api/rooms/{room}/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        f"Authorization: Bearer {tokens[idx]}\r\nContent-Type: "
                        f"application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                        + body)
            else:
                frame = orjson.dumps({"type": "say", "room": room, "text": text})
                t = members[idx].transport
                assert t is not None
                t.write(Frame(Opcode.TEXT, frame).serialize(mask=True))
            sent[idx] += 1
            idx += 1
            if idx == n:
                idx, cycle = 0, cycle + 1
        await asyncio.sleep(0.001)
        now = time.monotonic_ns()
    total = sum(sent)
    expected = total * (n - 1)
    deadline = time.monotonic() + args.drain
    echo = 1 if ours else 0  # ours echoes a say to its sender; a room's stream has its own
    while time.monotonic() < deadline:  # polling counters: no event to wait for
        if sum(m.got for m in members) >= expected + echo * total:
            break
        await asyncio.sleep(0.01)
    cpu1, load1 = watch.cpu(), own_cpu()
    span = (time.monotonic_ns() - start) / 1e9
    got = sum(m.got for m in members) - echo * total
    for m in members:
        if m.transport is not None:
            m.transport.abort()
    for p in posters:
        if p.transport is not None:
            p.transport.abort()
    short = sum(1 for m, own in zip(members, sent, strict=True)
                if m.got - echo * own < total - own)
    lat = {f"{k}_ms": round(hist.get_value_at_percentile(p) / 1000, 3)
           for k, p in (("p50", 50), ("p99", 99), ("p999", 99.9))}
    return {"bench": "push", "target": args.target, "server": args.server,
            "transport": args.transport, "users": n, "rate": args.rate,
            "setup_s": round(setup_s, 2), "sent": total, "expected_deliveries": expected,
            "delivered": got, "delivered_pct": round(100 * got / expected, 3) if expected else 0,
            "members_short": short, "all_delivered": short == 0,
            "deliveries_per_s": round(got / span, 1),
            "server_cpu_us_per_delivery": round((cpu1 - cpu0) * 1e6 / got, 4)
            if args.pid and got else None,
            "server_cpu_pct": round(100 * (cpu1 - cpu0) / span, 1) if args.pid else None,
            "load_cpu_pct": round(100 * (load1 - load0) / span, 1),
            "latency_samples": hist.get_total_count(), **lat,
            "max_ms": round(hist.get_max_value() / 1000, 3), "window_s": round(span, 2)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("target", help="the HTTP/WebSocket port as host:port")
    ap.add_argument("--transport", choices=("ws", "sse"), default="ws")
    ap.add_argument("--server", choices=("ours", "websockets", "aiohttp"), default="ours")
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=1.0, help="messages per user per second")
    ap.add_argument("--size", type=int, default=64, help="bytes of message text")
    ap.add_argument("--duration", type=float, default=8.0, help="seconds of sending")
    ap.add_argument("--settle", type=float, default=1.0)
    ap.add_argument("--drain", type=float, default=10.0,
                    help="at most this long after the last send for the deliveries")
    ap.add_argument("--probes", type=int, default=16)
    ap.add_argument("--pid", default=None, help="server pid(s), comma-separated")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    if args.server != "ours" and args.transport != "ws":
        ap.error("the reference servers are WebSocket only")
    raise_fd_limit()
    import uvloop
    result = uvloop.run(run(args))
    emit(result, f"push {args.server}/{args.transport} users={args.users}: "
                 f"{result['deliveries_per_s']:,.0f} deliveries/s, "
                 f"{result['delivered_pct']}% delivered, "
                 f"{result['server_cpu_us_per_delivery']} µs server CPU/delivery, p99 "
                 f"{result['p99_ms']} ms, load CPU {result['load_cpu_pct']}%", args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
