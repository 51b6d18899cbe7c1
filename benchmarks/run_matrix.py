#!/usr/bin/env python3
"""Run the whole benchmark matrix: every server pinned to one core, the load on the other.

For each benchmark, server and round: start the server fresh under ``taskset -c 0`` (on free
loopback ports), run the benchmark under ``taskset -c 1`` with ``--pid``, stop the server.
Then print medians over the rounds, ratios of ``chat serve`` to each reference, the issue's
targets with pass/fail, and write everything as JSON (and a Markdown table).

    python benchmarks/run_matrix.py                 # full matrix, 3 rounds (about 25 min)
    python benchmarks/run_matrix.py --quick         # one short round of everything (~6 min)
    python benchmarks/run_matrix.py --benches http --http-servers aiohttp,nginx
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import psutil
import servers
from benchlib import ServerWatch
from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
# In-flight handshakes for idle, per server: ngircd listens with a backlog of 10, so more
# than a handful of simultaneous SYNs overflow it and the kernel's SYN retries (1 s, 3 s...)
# would be measured instead of ngircd; inspircd completes registrations on a 1-second tick,
# so it needs many in flight to show its rate.
IDLE_CONCURRENCY = {"ngircd": 8, "inspircd": 2000}  # others: 400

# (key in the results, label, metric, lower is better, format)
METRICS: dict[str, list[tuple[str, str, bool, str]]] = {
    "fanout": [("deliveries_per_s", "deliveries/s", False, "{:,.0f}"),
               ("delivered_pct", "delivered %", False, "{:.2f}"),
               ("all_delivered", "all members ok", False, "{:.0f}"),
               ("server_cpu_us_per_delivery", "µs CPU/delivery", True, "{:.3f}"),
               ("server_cpu_us_per_delivery_steady", "µs CPU/del. steady", True, "{:.3f}"),
               ("server_cpu_pct", "server CPU %", True, "{:.0f}"),
               ("p50_ms", "p50 ms", True, "{:.2f}"),
               ("p99_ms", "p99 ms", True, "{:.2f}"),
               ("p99_all_ms", "p99 all ms", True, "{:.2f}"),
               ("tcp_segments_per_delivery", "segments/del.", True, "{:.3f}"),
               ("server_system_share", "kernel share", True, "{:.2f}"),
               ("max_ms", "max ms", True, "{:.1f}"),
               ("load_cpu_pct", "load CPU %", True, "{:.0f}")],
    "idle": [("held", "held", False, "{:,.0f}"),
             ("lost", "lost", True, "{:,.0f}"),
             ("rss_per_conn_kib", "KiB RSS/conn", True, "{:.2f}"),
             ("setup_per_s", "set-ups/s", False, "{:,.0f}"),
             ("server_cpu_hold_pct", "CPU % holding", True, "{:.2f}")],
    "push": [("deliveries_per_s", "deliveries/s", False, "{:,.0f}"),
             ("delivered_pct", "delivered %", False, "{:.2f}"),
             ("all_delivered", "all members ok", False, "{:.0f}"),
             ("server_cpu_us_per_delivery", "µs CPU/delivery", True, "{:.3f}"),
             ("server_cpu_pct", "server CPU %", True, "{:.0f}"),
             ("p50_ms", "p50 ms", True, "{:.2f}"),
             ("p99_ms", "p99 ms", True, "{:.2f}"),
             ("load_cpu_pct", "load CPU %", True, "{:.0f}")],
    "pushidle": [("held", "held", False, "{:,.0f}"),
                 ("lost", "lost", True, "{:,.0f}"),
                 ("total_kib", "KiB RSS/conn", True, "{:.2f}"),
                 ("session_kib", "of which session", True, "{:.2f}"),
                 ("pings_answered", "pings answered", False, "{:,.0f}"),
                 ("server_cpu_hold_pct", "CPU % holding", True, "{:.2f}")],
    "longpoll": [("held", "polls held", False, "{:,.0f}"),
                 ("answered_ok", "answered ok", False, "{:,.0f}"),
                 ("last_answer_ms", "ms to last answer", True, "{:.1f}"),
                 ("server_cpu_us_per_answer", "µs CPU/answer", True, "{:.1f}")],
    "http": [("requests_per_s", "requests/s", False, "{:,.0f}"),
             ("server_cpu_us_per_request", "µs CPU/req", True, "{:.1f}"),
             ("latency_p99_ms", "p99 ms", True, "{:.2f}"),
             ("wrk_cpu_pct", "wrk CPU %", True, "{:.0f}")],
}


RATIO_METRICS = {"fanout": ("server_cpu_us_per_delivery", "p99_ms"),
                 "push": ("server_cpu_us_per_delivery", "p99_ms"),
                 "pushidle": ("total_kib",), "longpoll": ("last_answer_ms",),
                 "idle": ("rss_per_conn_kib", "setup_per_s"),
                 "http": ("requests_per_s",)}


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions = {}
    for name, argv in (("ngircd", ["ngircd", "--version"]), ("inspircd", ["inspircd",
                       "--version"]), ("nginx", ["nginx", "-v"]), ("wrk", ["wrk", "-v"])):
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            versions[name] = (out.stdout + out.stderr).strip().splitlines()[0][:80]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            versions[name] = "?"
    import aiohttp
    import uvloop
    return {"cpu": model, "cores": os.cpu_count(), "kernel": platform.release(),
            "python": platform.python_version(), "uvloop": getattr(uvloop, "__version__", "?"),
            "aiohttp": aiohttp.__version__, "load": os.getloadavg(), **versions}


PUSH_SERVERS = {"ours-ws": ("ours", "ws"), "ours-sse": ("ours", "sse"),
                "websockets": ("websockets", "ws"), "aiohttp-ws": ("aiohttp", "ws")}


def run_one(bench: str, server: str, args: argparse.Namespace, extra: list[str]) -> dict[str, Any]:
    """Start ``server``, run one benchmark against it, stop it; returns the JSON result."""
    if bench == "pushidle":  # ws_idle.py starts (and pins) its server itself
        impl, transport = PUSH_SERVERS[server]
        argv = ["taskset", "-c", str(args.load_cpu), sys.executable, str(HERE / "ws_idle.py"),
                "--server", impl, "--transport", transport, "--server-cpu",
                str(args.server_cpu), *extra]
        return _run(argv, args, None)
    push = PUSH_SERVERS.get(server) if bench == "push" else None
    if push is not None:
        extra = ["--server", push[0], "--transport", push[1], *extra]
        server = "ours" if push[0] == "ours" else server
    options = args.ours_options.split()
    if bench == "http":
        options += servers.OURS_HTTP_OPTIONS
    if server.startswith("ours+"):  # a variant: ours with more options (--variant)
        options += args.variants[server]
        server = "ours"
    port = servers.free_port()
    http_port = servers.free_port() if server == "ours" else None
    srv = servers.start(server, port, http_port=http_port, cpu=args.server_cpu, extra=options)
    on_http = bench in ("http", "push", "longpoll") and server == "ours"
    target_port = http_port if on_http else port
    script = {"fanout": "fanout.py", "idle": "idle.py", "http": "http_poll.py",
              "push": "push_fanout.py", "longpoll": "longpoll_wake.py"}[bench]
    argv = ["taskset", "-c", str(args.load_cpu), sys.executable, str(HERE / script),
            f"127.0.0.1:{target_port}", "--pid", str(srv.pid), *extra]
    return _run(argv, args, srv)


def _run(argv: list[str], args: argparse.Namespace, srv: servers.Server | None
         ) -> dict[str, Any]:
    """Run one benchmark process (then stop ``srv``); its JSON result plus the noise."""
    watch = ServerWatch(srv.pid if srv is not None else None)
    try:
        time.sleep(0.5)
        before = _busy(args, watch)
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=args.bench_timeout)
        others = _others(args, watch, before)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {args.bench_timeout} s"}
    finally:
        if srv is not None:
            srv.stop()
    lines = proc.stdout.strip().splitlines()
    if not lines or not lines[0].startswith("{"):
        return {"error": (proc.stderr.strip() or proc.stdout.strip())[-300:] or "no output"}
    result: dict[str, Any] = json.loads(lines[0])
    result.update(others)
    result["noisy"] = max(others.values()) > args.noise_limit
    if len(lines) > 1:
        print("   ", lines[-1], f"[other processes: core {args.server_cpu} "
              f"{others['others_server_core_pct']}%, core {args.load_cpu} "
              f"{others['others_load_core_pct']}%{' NOISY' if result['noisy'] else ''}]",
              flush=True)
    return result


def _busy(args: argparse.Namespace, watch: ServerWatch) -> tuple[float, float, float, float,
                                                                  float]:
    """(time, busy s on the server core, busy s on the load core, server CPU, load CPU)."""
    cores = psutil.cpu_times(percpu=True)

    def busy(c: Any) -> float:
        return float(sum(c) - c.idle - getattr(c, "iowait", 0.0))

    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (time.monotonic(), busy(cores[args.server_cpu]), busy(cores[args.load_cpu]),
            watch.cpu(), kids.ru_utime + kids.ru_stime)


def _others(args: argparse.Namespace, watch: ServerWatch,
            before: tuple[float, float, float, float, float]) -> dict[str, float]:
    """How much of each pinned core other processes used during the run (noise), in %."""
    after = _busy(args, watch)
    span = after[0] - before[0]
    server_core = (after[1] - before[1]) - (after[3] - before[3])
    load_core = (after[2] - before[2]) - (after[4] - before[4])
    return {"others_server_core_pct": round(max(0.0, 100 * server_core / span), 1),
            "others_load_core_pct": round(max(0.0, 100 * load_core / span), 1)}


def plan(args: argparse.Namespace) -> list[tuple[str, str, str, list[str], int]]:
    """(result key, benchmark, server, extra argv, rounds) for every cell of the matrix."""
    cells = []
    if "fanout" in args.benches:
        for size in args.users:  # "600", or "19000x100": users spread over rooms
            users, _, rooms = size.partition("x")
            for s in args.irc_servers:
                cells.append((f"fanout-{size}", "fanout", s,
                              ["--users", users, "--rooms", rooms or "1",
                               "--duration", str(args.duration),
                               *args.fanout_options.split()],
                              args.rounds))
    if "idle" in args.benches:
        for s in args.irc_servers:
            cells.append(("idle", "idle", s,
                          ["-n", str(args.idle_connections), "--hold", str(args.idle_hold),
                           "--concurrency", str(IDLE_CONCURRENCY.get(s, 400)),
                           "--setup-timeout", str(args.idle_setup_timeout)],
                          args.idle_rounds))
    if "push" in args.benches:
        for users in args.push_users:
            for s in args.push_servers:
                cells.append((f"push-{users}", "push", s,
                              ["--users", users, "--duration", str(args.duration)],
                              args.rounds))
    if "pushidle" in args.benches:
        for s in args.push_servers:
            if s == "aiohttp-ws":
                continue  # memory is compared with the websockets library's server
            cells.append(("pushidle", "pushidle", s,
                          ["--connections", str(args.idle_connections),
                           "--hold", str(args.idle_hold)], args.idle_rounds))
    if "longpoll" in args.benches:
        cells.append(("longpoll", "longpoll", "ours", ["-n", str(args.longpoll_n)],
                      args.rounds))
    if "http" in args.benches:
        for s in args.http_servers:
            extra = ["--duration", str(args.http_duration)]
            if s in ("nginx", "floor-http"):
                extra += ["--static", "/api/rooms/bench/messages?since=0"]
            cells.append(("http", "http", s, extra, args.rounds))
    return cells


def flatten(key: str, result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """http results hold two modes; give each its own row key."""
    if key == "http":
        shared = {k: v for k, v in result.items() if k == "noisy" or k.startswith("others_")}
        return {f"http-{m}": {**result[m], **shared} for m in ("keepalive", "close")
                if m in result}
    return {key: result}


def medians(runs: list[dict[str, Any]], metrics: list[tuple[str, str, bool, str]]
            ) -> dict[str, float]:
    out = {}
    for name, _label, _lower, _fmt in metrics:
        values = [r[name] for r in runs if isinstance(r.get(name), int | float)]
        if values:  # every member got every message: in every round, not in most
            out[name] = min(values) if name == "all_delivered" else statistics.median(values)
    return out


def kind_of(key: str) -> str:
    return key.split("-")[0]


def targets(med: dict[str, dict[str, dict[str, float]]], me: str = "ours"
            ) -> list[tuple[str, bool | None, str]]:
    """The issue's targets for server ``me``: (text, passed or None if unmeasured, evidence)."""
    out: list[tuple[str, bool | None, str]] = []

    def get(key: str, server: str, metric: str) -> float | None:
        return med.get(key, {}).get(me if server == "ours" else server, {}).get(metric)

    def at_most(text: str, ours: float | None, ref: float | None, factor: float,
                unit: str) -> None:
        """ours <= factor * ref (a ratio target against a reference server)."""
        if ours is None or not ref:
            out.append((text, None, "not measured"))
        else:
            out.append((text, ours <= factor * ref,
                        f"{ours:,.3f} vs {ref:,.3f} {unit} ({ours / ref:.2f}x)"))

    def at_least(text: str, ours: float | None, floor: float | None, unit: str) -> None:
        if ours is None or floor is None:
            out.append((text, None, "not measured"))
        else:
            out.append((text, ours >= floor, f"{ours:,.2f} {unit} (need {floor:,.2f})"))

    for key in sorted(k for k in med if k.startswith("fanout-")):
        cpu = "server_cpu_us_per_delivery"
        all_ok = get(key, "ours", "all_delivered")
        out.append((f"{key}: every member got every message",
                    None if all_ok is None else all_ok == 1.0,
                    f"delivered {get(key, 'ours', 'delivered_pct')} %"))
        at_most(f"{key}: CPU/delivery <= inspircd", get(key, "ours", cpu),
                get(key, "inspircd", cpu), 1.0, "µs")
        at_most(f"{key}: p99 <= inspircd", get(key, "ours", "p99_ms"),
                get(key, "inspircd", "p99_ms"), 1.0, "ms")
    at_least("idle: 19,000 held", get("idle", "ours", "held"), 19000, "connections")
    lost = get("idle", "ours", "lost")
    out.append(("idle: none lost", None if lost is None else lost == 0, f"lost {lost}"))
    rss = get("idle", "ours", "rss_per_conn_kib")
    out.append(("idle: <= 2.4 KiB RSS per connection", None if rss is None else rss <= 2.4,
                f"{rss} KiB (inspircd {get('idle', 'inspircd', 'rss_per_conn_kib')})"))
    push_keys = sorted(k for k in med if k.startswith("push-")) if me == "ours" else []
    for key in push_keys:
        ws = med[key].get("ours-ws", {})
        for ref in ("websockets", "aiohttp-ws"):
            r = med[key].get(ref, {})
            cpu, r_cpu = ws.get("server_cpu_us_per_delivery"), r.get("server_cpu_us_per_delivery")
            at_most(f"{key}: WebSocket CPU/delivery <= 0.5x {ref}", cpu, r_cpu, 0.5, "µs")
            at_most(f"{key}: WebSocket p99 <= {ref}", ws.get("p99_ms"), r.get("p99_ms"), 1.0,
                    "ms")
    if "pushidle" in med and me == "ours":
        for lane in ("ours-ws", "ours-sse"):
            kib = med["pushidle"].get(lane, {}).get("total_kib")
            ref = med["pushidle"].get("websockets", {}).get("total_kib")
            out.append((f"pushidle: {lane} KiB per connection (websockets: {ref})",
                        None if kib is None else kib <= 2.4, f"{kib} KiB (target 2.4)"))
    for mode in ("keepalive", "close"):
        ours = get(f"http-{mode}", "ours", "requests_per_s")
        ref = get(f"http-{mode}", "nginx", "requests_per_s")
        at_least(f"http-{mode}: >= 0.6x nginx (static file)", ours,
                 0.6 * ref if ref else None, "req/s")
    return out


def report(results: dict[str, dict[str, list[dict[str, Any]]]], info: dict[str, Any],
           rounds: dict[str, int]) -> tuple[dict[str, Any], str]:
    """Print the tables; return the medians and a Markdown rendering of them."""
    console = Console(width=250)
    med: dict[str, dict[str, dict[str, float]]] = defaultdict(dict)
    md = [f"Machine: {info['cpu']}, {info['cores']} cores, Linux {info['kernel']}, "
          f"Python {info['python']}, uvloop {info['uvloop']}, aiohttp {info['aiohttp']}, "
          f"{info['ngircd'].split('-')[0]}, {info['inspircd']}, {info['nginx']}. "
          "Server pinned to core 0, load to core 1 (`taskset`); medians of "
          + ", ".join(f"{k}: {v}" for k, v in rounds.items()) + " rounds.", ""]
    for key, by_server in results.items():
        metrics = METRICS[kind_of(key)]
        table = Table(title=key)
        table.add_column("server")
        for _n, label, _l, _f in metrics:
            table.add_column(label, justify="right")
        md += [f"**{key}**", "", "| server | " + " | ".join(m[1] for m in metrics) + " |",
               "|---" * (len(metrics) + 1) + "|"]
        for server, runs in by_server.items():
            # a run with errors, or with non-2xx answers or socket errors (http), is no figure
            good = [r for r in runs if "error" not in r and r.get("valid") is not False]
            clean = [r for r in good if not r.get("noisy")]
            good = clean or good  # noisy runs count only when there is nothing else
            m = med[key][server] = medians(good, metrics)
            cells = [fmt.format(m[n]) if n in m else "—" for n, _lab, _l, fmt in metrics]
            if len(good) < len(runs):
                cells[-1] += f" ({len(runs) - len(good)} failed)"
            table.add_row(server, *cells)
            md.append(f"| {server} | " + " | ".join(cells) + " |")
        console.print(table)
        md.append("")
    ratio_lines = []
    for key, med_by_server in med.items():
        # ours, or per transport ours-ws/ours-sse (the push benches); variants are references
        for me in [s for s in med_by_server if s == "ours" or s.startswith("ours-")]:
            for main_metric in RATIO_METRICS[kind_of(key)]:
                lower = {n: lw for n, _lab, lw, _f in METRICS[kind_of(key)]}[main_metric]
                for server, ref in med_by_server.items():
                    if server == me or server.startswith("ours-") or not ref.get(main_metric):
                        continue
                    if main_metric not in med_by_server[me]:
                        continue
                    ratio = med_by_server[me][main_metric] / ref[main_metric]
                    ratio_lines.append(f"{key}: {me}/{server} {main_metric} = {ratio:.2f}"
                                       + (" (lower is better)" if lower else ""))
    for line in ratio_lines:
        console.print(line)
    md += ["Ratios (ours / reference):", ""] + [f"- {line}" for line in ratio_lines] + [""]
    mes = sorted({s for by_server in med.values() for s in by_server
                  if s.startswith("ours") and not s.startswith("ours-")})
    for me in mes:
        md += [f"Targets ({me}):", ""]
        console.print(f"Targets ({me}):")
        for text, ok, evidence in targets(med, me):
            if ok is None and me != "ours":
                continue  # a variant runs the IRC benchmarks only
            mark = "n/a" if ok is None else ("PASS" if ok else "FAIL")
            console.print(f"[{'green' if ok else 'red'}]{mark}[/] {text}: {evidence}")
            md.append(f"- {mark} {text}: {evidence}")
        md.append("")
    return dict(med), "\n".join(md) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--benches", default="fanout,idle,http,push,pushidle,longpoll")
    ap.add_argument("--irc-servers", default="ours,inspircd,ngircd")
    ap.add_argument("--http-servers", default="ours,aiohttp,nginx")
    ap.add_argument("--users", default="600,900",
                    help="fanout sizes: users in one room, or UxR (U users over R rooms)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=10.0, help="fanout measured seconds")
    ap.add_argument("--idle-connections", type=int, default=19000)
    ap.add_argument("--idle-hold", type=float, default=60.0)
    ap.add_argument("--idle-rounds", type=int, default=1)
    ap.add_argument("--idle-setup-timeout", type=float, default=300.0)
    ap.add_argument("--http-duration", type=float, default=10.0)
    ap.add_argument("--push-users", default="1000", help="push (WebSocket/SSE) fan-out sizes")
    ap.add_argument("--push-servers", default="ours-ws,ours-sse,websockets,aiohttp-ws")
    ap.add_argument("--longpoll-n", type=int, default=10_000, help="long polls held")
    ap.add_argument("--fanout-options", default="",
                    help="extra fanout.py options for every server, e.g. '--read parse'")
    ap.add_argument("--ours-options", default="",
                    help="extra `chat serve` options, e.g. '--flush-interval 0.005'")
    ap.add_argument("--noise-limit", type=float, default=15.0,
                    help="%% of a pinned core other processes may use before a run is noisy")
    ap.add_argument("--retries", type=int, default=2,
                    help="re-run a noisy cell up to this many times")
    ap.add_argument("--variant", action="append", default=[], metavar="NAME=OPTIONS",
                    help="also run `ours+NAME`: chat serve with OPTIONS added, in every "
                         "IRC benchmark, e.g. --variant 'fi10=--flush-interval 0.01'")
    ap.add_argument("--windows", default="",
                    help="fixed flush windows in ms for the latency/CPU curve, e.g. "
                         "'0,5,10,20,30,50': adds a variant ours+wN (--flush-interval N ms "
                         "--flush-share 0) per window; plot with benchmarks/plot.py")
    ap.add_argument("--server-cpu", type=int, default=0)
    ap.add_argument("--load-cpu", type=int, default=1)
    ap.add_argument("--bench-timeout", type=float, default=600.0)
    ap.add_argument("--quick", action="store_true",
                    help="1 round, 5 s runs, 5,000 idle connections held 20 s")
    ap.add_argument("--out", default="benchmarks/results.json")
    ap.add_argument("--markdown", default=None, help="also write the tables here")
    args = ap.parse_args()
    if args.quick:
        args.rounds = args.idle_rounds = 1
        args.duration = args.http_duration = 5.0
        args.idle_connections, args.idle_hold = 5000, 20.0
    args.benches = args.benches.split(",")
    args.variants = {}
    for ms in filter(None, args.windows.split(",")):
        args.variant.append(f"w{ms}=--flush-interval {float(ms) / 1000} --flush-share 0")
    for spec in args.variant:
        name, _, options = spec.partition("=")
        args.variants[f"ours+{name}"] = options.split()
    args.irc_servers = args.irc_servers.split(",")
    args.irc_servers[1:1] = list(args.variants)
    args.http_servers = args.http_servers.split(",")
    args.push_users = args.push_users.split(",")
    args.push_servers = args.push_servers.split(",")
    args.users = args.users.split(",")
    info = machine()
    results: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    cells = plan(args)
    for rnd in range(max(c[4] for c in cells)):
        for key, bench, server, extra, rounds in cells:
            if rnd >= rounds:
                continue
            print(f"[round {rnd + 1}] {key} {server}", flush=True)
            for attempt in range(args.retries + 1):
                try:
                    result = run_one(bench, server, args, extra)
                except RuntimeError as exc:
                    result = {"error": str(exc)}
                if not result.get("noisy") or attempt == args.retries:
                    break
                print("    noisy run: waiting 20 s and trying again", flush=True)
                time.sleep(20)
            if "error" in result:
                print("    error:", result["error"], flush=True)
                for k in (["http-keepalive", "http-close"] if key == "http" else [key]):
                    results[k][server].append(result)
                continue
            for k, r in flatten(key, result).items():
                results[k][server].append(r)
    med, md = report(results, info, {"fanout/http": args.rounds, "idle": args.idle_rounds})
    Path(args.out).write_text(json.dumps({"machine": info, "args": vars(args),
                                          "results": results, "medians": med}, indent=1))
    print(f"wrote {args.out}")
    if args.markdown:
        Path(args.markdown).write_text(md)
        print(f"wrote {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
