#!/usr/bin/env python3
"""fanout: U users in one channel, each sending one PRIVMSG per second, open loop.

Every message goes to the U-1 other members, so the server makes U*(U-1) deliveries per
second.  Sends are paced evenly (user k sends at ``start + k/(U*rate) + n/rate``) whether or
not the server keeps up: a slow server shows as latency and undelivered messages, never as a
politely reduced load.  Latency runs from the *scheduled* send time (no coordinated omission)
to receipt, measured by a few probe members that parse every line; the other members only
count lines with ``bytes.count``.

Prints one JSON line and a one-line summary.  Example:

    python benchmarks/fanout.py 127.0.0.1:6667 --users 600 --pid $(pgrep -n inspircd)
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
import time
from multiprocessing.connection import Connection
from typing import Any

from benchlib import (
    CONNS_PER_WORKER,
    PLAIN,
    IrcConn,
    ServerWatch,
    SocketOptions,
    Workers,
    connect_all,
    cpu_count_note,
    emit,
    new_loop,
    own_cpu,
    parse_target,
    raise_fd_limit,
    split_evenly,
    wait_message,
)
from hdrh.histogram import HdrHistogram

LAT_MAX_US = 120_000_000  # histogram range: 1 µs .. 120 s
TICK = 0.001              # pacing granularity of the sender (seconds)


def worker(pipe: Connection, *, host: str, port: int, users: range, total: int, rate: float,
           channel: str, probes: int, size: int, concurrency: int, step_timeout: float,
           source: str | None, quickack: bool, parse_all: bool = False,
           opts: SocketOptions = PLAIN, rooms: int = 1) -> None:
    """One load process: set up ``users``, wait for the start time, send, count, report."""
    raise_fd_limit()
    loop = new_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(_worker(loop, pipe, host, port, users, total, rate, channel,
                                        probes, size, concurrency, step_timeout, source, quickack,
                                        parse_all, opts, rooms))
    finally:
        loop.close()


async def _worker(loop: asyncio.AbstractEventLoop, pipe: Connection, host: str, port: int,
                  users: range, total: int, rate: float, channel: str, probes: int,
                  size: int, concurrency: int, step_timeout: float, source: str | None,
                  quickack: bool, parse_all: bool, opts: SocketOptions, rooms: int) -> None:
    hist = HdrHistogram(1, LAT_MAX_US, 3)
    hist_all = HdrHistogram(1, LAT_MAX_US, 3)  # every message, the ramp-up included
    window = [0, 0]  # [w0, w1) in monotonic ns: only messages scheduled inside are timed

    def probe(block: bytes) -> None:
        now = time.monotonic_ns()
        w0, w1 = window
        for line in block.split(b"\n"):
            i = line.find(b" PRIVMSG ")
            if i < 0:
                continue
            j = line.find(b" :", i + 9) + 2
            k = line.find(b" ", j)
            try:
                ts = int(line[j:k])
            except ValueError:
                continue
            if ts >= w0_all:
                lat = max(1, (now - ts) // 1000)
                hist_all.record_value(lat)
                if w0 <= ts < w1:
                    hist.record_value(lat)

    w0_all = 1 << 62  # no message is timed before the start is known
    def room_of(k: int) -> str:  # user k is in room k % rooms
        return channel if rooms == 1 else f"{channel}{k % rooms}"

    conns = [IrcConn(f"f{k}", room_of(k), loop, probe if k < probes else None, quickack,
                     parse_all=parse_all) for k in users]
    errors = await connect_all(loop, host, port, conns, concurrency, step_timeout, source,
                               opts)
    pipe.send({"ready": len(conns) - len(errors), "errors": errors[:5],
               "failed": len(errors)})
    msg = await wait_message(loop, pipe)
    start, warmup, duration, drain = msg["start_ns"], msg["warmup"], msg["duration"], msg["drain"]
    w0 = start + int(warmup * 1e9)
    w1 = w0 + int(duration * 1e9)
    window[:] = [w0, w1]
    w0_all = start
    live = [(c, k) for c, k in zip(conns, users, strict=True) if not c.lost and not c.error]
    period = int(1e9 / rate)
    phases = [k * period // total for _c, k in live]
    pad = b"x" * max(0, size - 20)
    out = {"sent": 0, "sent_window": 0, "lag_max_us": 0, "lag_sum_us": 0}
    marks: dict[str, Any] = {}
    sent_by = [0] * len(live)  # per live member: every one is checked at the end

    def count() -> int:
        return sum(c.privmsgs for c in conns)

    idx, cycle = 0, 0
    now = time.monotonic_ns()
    while live and now < w1:
        if "w0" not in marks and now >= w0:
            marks["w0"] = (count(), own_cpu())
        while True:
            due = start + cycle * period + phases[idx]
            if due > now or due >= w1:
                break
            c = live[idx][0]
            sent_by[idx] += 1
            c.send(b"PRIVMSG %s :%d %s\r\n" % (c.channel.encode(), due, pad))
            lag = (now - due) // 1000
            out["sent"] += 1
            out["sent_window"] += due >= w0
            out["lag_sum_us"] += lag
            out["lag_max_us"] = max(out["lag_max_us"], lag)
            idx += 1
            if idx == len(live):
                idx, cycle = 0, cycle + 1
        await asyncio.sleep(TICK)
        now = time.monotonic_ns()
    if "w0" not in marks:
        marks["w0"] = (count(), own_cpu())
    marks["w1"] = (count(), own_cpu())
    await asyncio.sleep(max(0.0, (w1 + drain * 1e9 - time.monotonic_ns()) / 1e9))
    received = count()
    lost = sum(c.lost for c in conns)
    last_rx_ns = max(c.last_rx_ns for c in conns)
    reads = sum(c.reads for c in conns)
    # (received, sent) of every member still connected: the parent checks that each one got
    # every message the others sent, no fewer and no more.
    members = [(c.privmsgs, sent_by[i], k % rooms) for i, (c, k) in enumerate(live)
               if not c.lost]
    undecodable = sum(c.undecodable for c in conns)
    for c in conns:
        c.close()
    await asyncio.sleep(0.05)
    pipe.send({**out, "received": received,
               "received_window": marks["w1"][0] - marks["w0"][0],
               "cpu_window": marks["w1"][1] - marks["w0"][1],
               "lost": lost, "live": len(live), "hist": hist.encode(),
               "hist_all": hist_all.encode(), "last_rx_ns": last_rx_ns, "reads": reads,
               "members": members, "undecodable": undecodable,
               "cpu_total": own_cpu(),
               "lost_errors": [c.error for c in conns if c.lost][:3]})


def tcp_out_segments() -> int:
    """TCP segments sent by the whole machine so far (``Tcp: OutSegs`` of /proc/net/snmp):
    over loopback, the server's segments plus the load's own sends and ACKs."""
    with open("/proc/net/snmp") as f:
        rows = [line.split() for line in f if line.startswith("Tcp:")]
    return int(rows[1][rows[0].index("OutSegs")])


def sample_cpu_until_reports(watch: ServerWatch, workers: Workers,
                             limit: float) -> list[tuple[int, float]]:
    """(monotonic ns, server CPU s) every 10 ms until every worker has reported (the drain),
    so the CPU can be charged up to the moment the last delivery arrived."""
    samples = [(time.monotonic_ns(), watch.cpu())]
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and not all(p.poll(0) for p in workers.pipes):
        time.sleep(0.01)
        samples.append((time.monotonic_ns(), watch.cpu()))
    return samples


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("target", help="IRC server as host:port (several, comma-separated: the "
                                   "nodes of one chat; users are spread over them)")
    ap.add_argument("--users", type=int, default=600, help="members of the channel")
    ap.add_argument("--rate", type=float, default=1.0, help="PRIVMSGs per second per user")
    ap.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    ap.add_argument("--warmup", type=float, default=3.0, help="seconds of load before measuring")
    ap.add_argument("--drain", type=float, default=2.0,
                    help="seconds after the last send to wait for deliveries")
    ap.add_argument("--settle", type=float, default=1.0,
                    help="seconds between the last JOIN and the first message")
    ap.add_argument("--size", type=int, default=40, help="bytes of message text")
    ap.add_argument("--channel", default="#bench")
    ap.add_argument("--rooms", type=int, default=1,
                    help="spread the users over this many channels (user k in #bench<k %% R>)")
    ap.add_argument("--probes", type=int, default=16, help="members that time every message")
    ap.add_argument("--workers", type=int, default=0,
                    help="load processes (0: one per CPU this process may use)")
    ap.add_argument("--concurrency", type=int, default=100, help="handshakes in flight")
    ap.add_argument("--timeout", type=float, default=60.0, help="set-up timeout per user")
    ap.add_argument("--source", default=None, help="local address to connect from")
    ap.add_argument("--quickack", action="store_true",
                    help="re-arm TCP_QUICKACK on every read (see README: servers without "
                         "TCP_NODELAY otherwise stall on our delayed ACKs)")
    ap.add_argument("--read", choices=("count", "parse"), default="parse",
                    help="what members do with what they read: count PRIVMSGs with "
                         "bytes.count, or split and parse every line as a real client does")
    ap.add_argument("--rcvbuf", type=int, default=0,
                    help="SO_RCVBUF of the load's sockets, set before connecting "
                         "(0: the kernel's autotuned default)")
    ap.add_argument("--nagle", action="store_true",
                    help="leave Nagle on for the load's sockets (clear TCP_NODELAY)")
    ap.add_argument("--cpu-window", choices=("whole", "steady"), default="whole",
                    help="the CPU charged per delivery: 'whole' from the end of the set-up "
                         "to the last delivery over every delivery; 'steady' the measured "
                         "window only (after --warmup) over the deliveries in it")
    ap.add_argument("--pid", default=None,
                    help="server pid for CPU and RSS (several, comma-separated: summed)")
    ap.add_argument("--json", default=None, help="also write the JSON result here")
    args = ap.parse_args(argv)
    targets = [parse_target(t) for t in args.target.split(",")]
    if args.users < 2:
        ap.error("--users must be at least 2")

    nworkers = args.workers or max(len(os.sched_getaffinity(0)),
                                   math.ceil(args.users / CONNS_PER_WORKER))
    nworkers = min(max(nworkers, len(targets)), args.users)
    watch = ServerWatch([int(p) for p in args.pid.split(",")] if args.pid else None)
    rss_before = watch.rss()
    workers = Workers()
    common = dict(total=args.users, rate=args.rate,
                  channel=args.channel, probes=args.probes, size=args.size,
                  concurrency=max(1, args.concurrency // nworkers), step_timeout=args.timeout,
                  source=args.source, quickack=args.quickack,
                  parse_all=args.read == "parse", rooms=args.rooms,
                  opts=SocketOptions(rcvbuf=args.rcvbuf, nagle=args.nagle))
    t0 = time.monotonic()
    workers.start(worker, [{**common, "users": r, "host": targets[i % len(targets)][0],
                            "port": targets[i % len(targets)][1]}
                           for i, r in enumerate(split_evenly(args.users, nworkers))])
    ready = workers.gather(args.timeout * 4 + 30)
    setup_s = time.monotonic() - t0
    joined = sum(r["ready"] for r in ready)
    errors = [e for r in ready for e in r["errors"]]
    if joined < 2:
        workers.broadcast({"start_ns": 0, "warmup": 0, "duration": 0, "drain": 0})
        workers.stop()
        print(f"fanout: only {joined} users could join: {errors[:3]}", file=sys.stderr)
        return 1

    cpu_setup = watch.cpu()  # the whole window starts here: after the set-up
    split_setup = watch.cpu_split()
    time.sleep(args.settle)
    start_ns = time.monotonic_ns() + 200_000_000
    workers.broadcast({"start_ns": start_ns, "warmup": args.warmup,
                       "duration": args.duration, "drain": args.drain})
    w0 = start_ns / 1e9 + args.warmup
    time.sleep(max(0.0, w0 - time.monotonic()))
    cpu0, segs0 = watch.cpu(), tcp_out_segments()
    time.sleep(max(0.0, w0 + args.duration - time.monotonic()))
    cpu1, segs1 = watch.cpu(), tcp_out_segments()
    rss = watch.rss()
    samples = sample_cpu_until_reports(watch, workers, args.drain + 60)
    split_end = watch.cpu_split()
    results = workers.gather(args.drain + args.duration + 60)
    workers.stop()

    hist = HdrHistogram(1, LAT_MAX_US, 3)
    for r in results:
        hist.decode_and_add(r["hist"])
    sent = sum(r["sent"] for r in results)
    received = sum(r["received"] for r in results)
    window_received = sum(r["received_window"] for r in results)
    members = [m for r in results for m in r["members"]]
    room_sent, room_size = [0] * args.rooms, [0] * args.rooms
    for _got, own, room in members:
        room_sent[room] += own
        room_size[room] += 1
    expected = sum(sent_r * (size_r - 1) for sent_r, size_r in zip(room_sent, room_size,
                                                                   strict=True))
    short = sum(1 for got, own, room in members if got < room_sent[room] - own)
    over = sum(1 for got, own, room in members if got > room_sent[room] - own)
    server_cpu = cpu1 - cpu0
    last_rx = max(r["last_rx_ns"] for r in results)
    # The CPU reading at the first sample taken after the last delivery arrived.
    cpu_last = next((cpu for t, cpu in samples if t >= last_rx), samples[-1][1])
    whole_cpu = cpu_last - cpu_setup
    whole_s = max(1e-9, (last_rx - start_ns) / 1e9)
    load_cpu = sum(r["cpu_window"] for r in results)
    hist_all = HdrHistogram(1, LAT_MAX_US, 3)
    for r in results:
        hist_all.decode_and_add(r["hist_all"])
    steady_us = (server_cpu * 1e6 / window_received) if args.pid and window_received else None
    whole_us = (whole_cpu * 1e6 / received) if args.pid and received else None
    lat = {f"{name}_ms": round(hist.get_value_at_percentile(p) / 1000, 3)
           for name, p in (("p50", 50), ("p99", 99), ("p999", 99.9))}
    lat["max_ms"] = round(hist.get_max_value() / 1000, 3)
    lat_all = {f"{name}_all_ms": round(hist_all.get_value_at_percentile(p) / 1000, 3)
               for name, p in (("p50", 50), ("p99", 99), ("p999", 99.9))}
    lat_all["max_all_ms"] = round(hist_all.get_max_value() / 1000, 3)
    charged = whole_us if args.cpu_window == "whole" else steady_us
    result: dict[str, Any] = {
        "bench": "fanout", "target": args.target, "users": args.users, "joined": joined,
        "rate": args.rate, "size": args.size, "quickack": args.quickack,
        "read": args.read, "rcvbuf": args.rcvbuf, "nagle": args.nagle,
        "cpu_window": args.cpu_window,
        "duration_s": args.duration,
        "setup_s": round(setup_s, 3), "setup_errors": errors[:3],
        "sent": sent, "expected_deliveries": expected, "delivered": received,
        "members_checked": len(members), "members_short": short, "members_over": over,
        "all_delivered": short == 0 and over == 0 and len(members) == joined,
        "undecodable_blocks": sum(r["undecodable"] for r in results),
        "delivered_pct": round(100.0 * received / expected, 3) if expected else 0.0,
        "deliveries_per_s": round(window_received / args.duration, 1),
        "rooms": args.rooms,
        "offered_deliveries_per_s": round(sum(n * (n - 1) for n in room_size) * args.rate, 1),
        "server_cpu_pct": round(100 * server_cpu / args.duration, 1) if args.pid else None,
        "server_cpu_us_per_delivery": round(charged, 4) if charged is not None else None,
        "server_cpu_us_per_delivery_steady": (round(steady_us, 4) if steady_us is not None
                                              else None),
        "server_cpu_us_per_delivery_whole": (round(whole_us, 4) if whole_us is not None
                                             else None),
        "whole_window_s": round(whole_s + args.settle + 0.2, 3),
        "server_cpu_pct_whole": (round(100 * whole_cpu / (whole_s + args.settle + 0.2), 1)
                                 if args.pid else None),
        "server_system_share": (round((split_end[1] - split_setup[1])
                                      / max(1e-9, sum(split_end) - sum(split_setup)), 3)
                                if args.pid else None),
        "tcp_segments_per_delivery": (round((segs1 - segs0) / window_received, 4)
                                      if window_received else None),
        "load_reads_per_delivery": round(sum(r["reads"] for r in results) / received, 4)
                                   if received else None,
        "server_rss_mib": round(rss / 2**20, 1) if args.pid else None,
        "server_rss_growth_mib": round((rss - rss_before) / 2**20, 1) if args.pid else None,
        "latency_samples": hist.get_total_count(), **lat, **lat_all,
        "send_lag_max_ms": round(max(r["lag_max_us"] for r in results) / 1000, 3),
        "connections_lost": sum(r["lost"] for r in results),
        "lost_errors": [e for r in results for e in r["lost_errors"]][:3],
        "load_workers": nworkers, "load_cpu_pct": round(100 * load_cpu / args.duration, 1),
        **cpu_count_note(),
    }
    cpu_txt = (f"{result['server_cpu_us_per_delivery']} µs server CPU/delivery "
               f"({result['server_cpu_pct']}% of a core)" if args.pid else "no --pid")
    emit(result, f"fanout {args.target} users={args.users}: "
                 f"{result['deliveries_per_s']:,.0f} deliveries/s, "
                 f"{result['delivered_pct']}% delivered, {cpu_txt}, latency p50 "
                 f"{lat['p50_ms']} ms p99 {lat['p99_ms']} ms max {lat['max_ms']} ms, "
                 f"lost {result['connections_lost']}, load CPU {result['load_cpu_pct']}%",
         args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
