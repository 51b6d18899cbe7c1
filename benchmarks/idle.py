#!/usr/bin/env python3
"""idle: N registered connections over 100 channels, held with the server's heartbeats on.

Each connection registers (NICK/USER, waits for 001), joins ``#idle<k % channels>`` (waits for
366) and then stays silent except for answering the server's PINGs.  The load is spread over
several processes (at most 6,000 connections each, under the 20,000-descriptor limit), each
connecting from its own loopback address so that ephemeral ports never run short.

Reports the connect+register+join rate, the server's RSS growth per connection, connections
lost during the hold, PINGs answered (proof that heartbeats ran) and the server's CPU while
holding.  Prints one JSON line and a one-line summary:

    python benchmarks/idle.py 127.0.0.1:6667 --connections 19000 --hold 60 --pid PID
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time
from multiprocessing.connection import Connection
from typing import Any

from benchlib import (
    CONNS_PER_WORKER,
    IrcConn,
    ServerWatch,
    Workers,
    connect_all,
    cpu_count_note,
    emit,
    future_ok,
    new_loop,
    own_cpu,
    parse_target,
    raise_fd_limit,
    split_evenly,
    wait_message,
)


def worker(pipe: Connection, *, host: str, port: int, users: range, channels: int,
           concurrency: int, step_timeout: float, setup_limit: float,
           source: str | None, read_pause: float, distinct: bool = False) -> None:
    """One load process: set up ``users``, hold them until told, report what survived."""
    raise_fd_limit()
    loop = new_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(_worker(loop, pipe, host, port, users, channels, concurrency,
                                        step_timeout, setup_limit, source, read_pause,
                                        distinct))
    finally:
        loop.close()


async def _worker(loop: asyncio.AbstractEventLoop, pipe: Connection, host: str, port: int,
                  users: range, channels: int, concurrency: int, step_timeout: float,
                  setup_limit: float, source: str | None, read_pause: float,
                  distinct: bool) -> None:
    conns = [IrcConn(f"i{k}", f"#idle{k % channels}", loop, read_pause=read_pause,
                     realname=f"Bench User {k}" if distinct else "bench")
             for k in users]
    t_start = time.monotonic()
    try:
        errors = await asyncio.wait_for(
            connect_all(loop, host, port, conns, concurrency, step_timeout, source), setup_limit)
    except TimeoutError:
        errors = [f"{c.nick}: not joined after the {setup_limit:g} s set-up limit"
                  for c in conns if not future_ok(c.joined)]
    t_done = time.monotonic()
    pipe.send({"ok": len(conns) - len(errors), "errors": errors[:5], "failed": len(errors),
               "t_start": t_start, "t_done": t_done, "cpu": own_cpu()})
    cpu0 = own_cpu()
    await wait_message(loop, pipe)  # the parent says when the hold is over
    held = [c for c in conns if future_ok(c.joined)]
    lost = [c for c in held if c.lost]
    result = {"held": len(held) - len(lost), "lost": len(lost),
              "lost_errors": [c.error for c in lost][:3],
              "pings": sum(c.pings for c in conns), "cpu_hold": own_cpu() - cpu0}
    for c in conns:
        c.close()
    await asyncio.sleep(0.2)
    pipe.send(result)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("target", help="IRC server as host:port")
    ap.add_argument("--connections", "-n", type=int, default=19_000)
    ap.add_argument("--channels", type=int, default=100)
    ap.add_argument("--hold", type=float, default=60.0,
                    help="seconds to hold every connection once all are set up")
    ap.add_argument("--workers", type=int, default=0,
                    help=f"load processes (0: one per {CONNS_PER_WORKER} connections)")
    ap.add_argument("--concurrency", type=int, default=400,
                    help="handshakes in flight (all processes together)")
    ap.add_argument("--timeout", type=float, default=60.0, help="set-up timeout per user")
    ap.add_argument("--setup-timeout", type=float, default=180.0,
                    help="give up setting up connections after this many seconds")
    ap.add_argument("--read-pause", type=float, default=1.0,
                    help="once joined, each connection reads at most once per this many "
                         "seconds, so the JOIN lines of later joiners cost the load one read "
                         "per second, not one each (keep it far under the ping timeout; 0: "
                         "read at once)")
    ap.add_argument("--distinct-realnames", action="store_true",
                    help="every user its own realname (default: all 'bench', as most "
                         "benchmarks and many clients send one)")
    ap.add_argument("--same-source", action="store_true",
                    help="connect every process from 127.0.0.1 (default: 127.0.0.<2+i>)")
    ap.add_argument("--pid", type=int, default=None, help="server pid (for CPU and RSS)")
    ap.add_argument("--json", default=None, help="also write the JSON result here")
    args = ap.parse_args(argv)
    host, port = parse_target(args.target)
    nworkers = args.workers or max(1, math.ceil(args.connections / CONNS_PER_WORKER))
    loopback = host.startswith("127.")
    watch = ServerWatch(args.pid)
    rss0 = watch.rss()
    cpu_start = watch.cpu()
    workers = Workers()
    workers.start(worker, [
        {"host": host, "port": port, "users": r, "channels": args.channels,
         "concurrency": max(1, args.concurrency // nworkers), "step_timeout": args.timeout,
         "setup_limit": args.setup_timeout, "read_pause": args.read_pause,
         "distinct": args.distinct_realnames,
         "source": None if args.same_source or not loopback else f"127.0.0.{2 + i}"}
        for i, r in enumerate(split_evenly(args.connections, nworkers))])
    ready = workers.gather(args.setup_timeout + 60)
    ok = sum(r["ok"] for r in ready)
    setup_s = max(r["t_done"] for r in ready) - min(r["t_start"] for r in ready)
    rss_setup = watch.rss()
    cpu0 = watch.cpu()
    setup_cpu = cpu0 - cpu_start
    rss_peak = rss_setup
    deadline = time.monotonic() + args.hold
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(left, 5.0))
        rss_peak = max(rss_peak, watch.rss())
    rss_end = watch.rss()
    server_cpu = watch.cpu() - cpu0
    workers.broadcast({"stop": True})
    done = workers.gather(60)
    workers.stop()
    held = sum(r["held"] for r in done)
    lost = sum(r["lost"] for r in done)
    per_conn = (rss_end - rss0) / ok if args.pid and ok else None
    result: dict[str, Any] = {
        "bench": "idle", "target": args.target, "connections": args.connections,
        "channels": args.channels, "hold_s": args.hold, "set_up": ok,
        "distinct_realnames": args.distinct_realnames,
        "setup_failed": args.connections - ok,
        "setup_errors": [e for r in ready for e in r["errors"]][:3],
        "setup_s": round(setup_s, 3),
        "setup_per_s": round(ok / setup_s, 1) if setup_s > 0 else None,
        "held": held, "lost": lost,
        "lost_errors": [e for r in done for e in r["lost_errors"]][:3],
        "pings_answered": sum(r["pings"] for r in done),
        "server_rss_before_mib": round(rss0 / 2**20, 1) if args.pid else None,
        "server_rss_mib": round(rss_end / 2**20, 1) if args.pid else None,
        "server_rss_peak_mib": round(rss_peak / 2**20, 1) if args.pid else None,
        "rss_per_conn_kib": round(per_conn / 1024, 3) if per_conn is not None else None,
        "server_cpu_setup_pct": (round(100 * setup_cpu / setup_s, 1)
                                 if args.pid and setup_s > 0 else None),
        "server_cpu_us_per_setup": round(setup_cpu * 1e6 / ok, 1) if args.pid and ok else None,
        "server_cpu_hold_pct": round(100 * server_cpu / args.hold, 2) if args.pid else None,
        "load_workers": nworkers,
        "load_cpu_setup_pct": (round(100 * sum(r["cpu"] for r in ready) / setup_s, 1)
                               if setup_s > 0 else None),
        "load_cpu_hold_pct": round(100 * sum(r["cpu_hold"] for r in done) / args.hold, 2),
        **cpu_count_note(),
    }
    rss_txt = f"{result['rss_per_conn_kib']} KiB RSS/conn" if args.pid else "no --pid"
    emit(result, f"idle {args.target} n={args.connections}: {ok} set up at "
                 f"{result['setup_per_s']:,.0f}/s, held {held} for {args.hold:g} s, lost {lost}, "
                 f"{rss_txt}, {result['pings_answered']} PINGs answered, server CPU while "
                 f"holding {result['server_cpu_hold_pct']}%", args.json)
    return 0 if ok == args.connections and lost == 0 else 2


if __name__ == "__main__":
    sys.exit(main())
