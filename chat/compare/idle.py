"""``--scenario idle``: many idle clients, their heartbeat traffic and memory over time.

The lab brings up ``--clients`` clients per mode, one mode after the other, reading the
server's resident memory before and after each mode to charge it per client.  Then nobody
speaks for ``--duration`` seconds while the lab samples, about ten times, the server's
memory and CPU, its PINGs and bytes, and each mode's requests and bytes: the price of
merely staying connected.  A launched server heartbeats every few seconds
(``IDLE_SETTINGS``) so a short run shows several beats; the cost is also scaled to the
server's default intervals.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from rich import box
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from .deadpeer import idle_options, keepalive_costs, longpoll_wait
from .metrics import numeric_delta
from .options import LabOptions
from .procs import ServerTarget, Snapshot, WorkerHandle
from .report import fmt_num, pace
from .runner import run_tag, server_dict, spawn_receivers

SETTLE_S = 0.5   # after a mode's clients joined, before its memory is read
SAMPLES = 10


def _stat(snap: Snapshot, transport: str, name: str) -> Any:
    return ((snap.stats or {}).get(transport) or {}).get(name)


async def ramp_up(opts: LabOptions, target: ServerTarget, room: str, tag: str,
                  console: Console) -> tuple[list[WorkerHandle], list[dict[str, Any]]]:
    """Start each mode's clients in turn; server memory per client for each."""
    workers: list[WorkerHandle] = []
    ramp: list[dict[str, Any]] = []
    wait = longpoll_wait(target.config)
    try:
        for mode in opts.modes:
            with console.status(f"connecting {opts.clients} idle {mode} clients"):
                before = await target.snapshot()
                started, errors = await spawn_receivers(target, (mode,), opts.clients, room,
                                                        tag, opts.interval, wait,
                                                        options=idle_options(target.config))
                workers += started
                await asyncio.sleep(SETTLE_S)
                after = await target.snapshot()
            clients = opts.clients - len(errors.get(mode, []))
            grown = (after.rss - before.rss) if after.rss and before.rss else None
            ramp.append({"mode": mode, "clients": clients, "start_errors": errors.get(mode, []),
                         "rss_before": before.rss, "rss_after": after.rss,
                         "server_kib_per_client": (round(grown / clients / 1024, 2)
                                                   if grown is not None and clients else None)})
    except BaseException:
        await asyncio.gather(*(w.close() for w in workers))
        raise
    return workers, ramp


def timeline_point(start: Snapshot, prev: Snapshot, now: Snapshot) -> dict[str, Any]:
    """One sample: memory, CPU since the previous sample, cumulative heartbeat traffic."""
    span = max(now.wall - prev.wall, 1e-9)
    cpu = (now.cpu_s - prev.cpu_s) if now.cpu_s is not None and prev.cpu_s is not None else None
    delta = (numeric_delta(now.stats, start.stats)
             if now.stats is not None and start.stats is not None else {})
    irc, http, ws = delta.get("irc", {}), delta.get("http", {}), delta.get("ws", {})
    return {"t_s": round(now.wall - start.wall, 2), "rss_bytes": now.rss,
            "cpu_pct": None if cpu is None else round(100 * cpu / span, 2),
            "irc_pings_sent": irc.get("pings_sent"), "irc_bytes_out": irc.get("bytes_out"),
            "irc_bytes_in": irc.get("bytes_in"), "ws_pings_sent": ws.get("pings_sent"),
            "ws_bytes_out": ws.get("bytes_out"), "http_requests": http.get("requests"),
            "http_bytes_out": http.get("bytes_out"), "http_bytes_in": http.get("bytes_in")}


async def hold(opts: LabOptions, target: ServerTarget, workers: list[WorkerHandle],
               console: Console) -> tuple[Snapshot, Snapshot, list[dict[str, Any]]]:
    """Stay idle for ``--duration`` seconds, sampling the server about ten times."""
    # Everyone's joins are news to the clients that came earlier: let the pollers fetch
    # them before the quiet is measured.
    with console.status("letting the room settle"):
        await asyncio.sleep(opts.interval + SETTLE_S)
    for worker in workers:
        worker.command("go", t0=time.time())
    await asyncio.gather(*(w.expect("mark", 10.0) for w in workers))
    start = prev = await target.snapshot()
    timeline: list[dict[str, Any]] = []
    step = max(0.5, opts.duration / SAMPLES)
    ends = time.monotonic() + opts.duration
    progress = Progress(TextColumn("idle"), BarColumn(), TimeRemainingColumn(),
                        console=console, transient=True, disable=not opts.progress)
    with progress:
        task = progress.add_task("idle", total=opts.duration)
        while (left := ends - time.monotonic()) > 0:
            await asyncio.sleep(min(step, left))
            now = await target.snapshot()
            timeline.append(timeline_point(start, prev, now))
            prev = now
            progress.update(task, completed=opts.duration - max(0.0, ends - time.monotonic()))
    return start, prev, timeline


async def run_idle(opts: LabOptions, target: ServerTarget, console: Console) -> dict[str, Any]:
    """Run the scenario (see the module docstring); the --json document."""
    tag = run_tag()
    room = opts.room or f"idle{tag}"
    baseline = await target.snapshot()
    workers, ramp = await ramp_up(opts, target, room, tag, console)
    try:
        start, end, timeline = await hold(opts, target, workers, console)
        for worker in workers:
            worker.command("sample")
        samples = list(await asyncio.gather(*(w.expect("sample", 10.0) for w in workers)))
    finally:
        await asyncio.gather(*(w.close() for w in workers))
    costs = keepalive_costs(opts, target.config, samples, workers)
    for cost, step in zip(costs, ramp, strict=True):
        cost["server_kib_per_client"] = step["server_kib_per_client"]
        cost["client_cpu_pct"] = round(100 * float(cost["client_cpu_s"] or 0)
                                       / max(end.wall - start.wall, 1e-9), 2)
    span = max(end.wall - start.wall, 1e-9)
    server_cpu = (end.cpu_s - start.cpu_s
                  if end.cpu_s is not None and start.cpu_s is not None else None)
    return {
        "scenario": "idle",
        "options": {"clients": opts.clients, "duration": opts.duration,
                    "interval": opts.interval, "modes": list(opts.modes),
                    "settings": dict(opts.settings)},
        "server": {**server_dict(target), "rss_baseline": baseline.rss, "rss_end": end.rss,
                   "cpu_pct_idle": None if server_cpu is None else round(100 * server_cpu / span,
                                                                         2)},
        "ramp": ramp, "modes": costs, "timeline": timeline,
        "rows": [{"kind": "mode", **c} for c in costs]
        + [{"kind": "sample", **t} for t in timeline],
        "verdict": {"ok": all(not r["start_errors"] for r in ramp)},
    }


def show_idle(result: dict[str, Any], console: Console) -> None:
    """The per-mode table, the timeline and a paragraph."""
    opts = result["options"]
    table = Table(title=f"Idle: {opts['clients']} clients per mode, nobody speaking for "
                        f"{opts['duration']:g} s; per client (per minute)",
                  caption="KiB: server memory per client; paced by: ping interval (irc, ws), "
                          "heartbeat (sse), wait (longpoll), poll interval; @def: bytes "
                          "per minute scaled to the server's default heartbeats",
                  caption_justify="left", box=box.SIMPLE_HEAD, title_justify="left")
    for name in ("mode", "n", "KiB", "paced by", "req", "B in", "B out", "conns", "B @def",
                 "CPU"):
        table.add_column(name, justify="right", no_wrap=name == "mode")
    for c in result["modes"]:
        kib = c["server_kib_per_client"]
        table.add_row(c["mode"], str(c["clients"]), "-" if kib is None else f"{kib:.1f}",
                      pace(c["heartbeat_s"]), fmt_num(c["requests_per_min"]),
                      fmt_num(c["bytes_in_per_min"]), fmt_num(c["bytes_out_per_min"]),
                      fmt_num(c["connections_opened_per_min"]),
                      fmt_num(c["bytes_per_min_at_defaults"]), f"{c['client_cpu_pct']:.1f}%")
    console.print(table)
    line = Table(title="Server over time (traffic counted from the start of the hold)",
                 box=box.SIMPLE_HEAD, title_justify="left")
    for name in ("t (s)", "RSS MiB", "CPU", "IRC PINGs", "IRC B out", "WS Pings", "WS B out",
                 "HTTP requests", "HTTP B out"):
        line.add_column(name, justify="right")
    for t in result["timeline"]:
        line.add_row(f"{t['t_s']:.1f}", _mib(t["rss_bytes"]),
                     "-" if t["cpu_pct"] is None else f"{t['cpu_pct']:.1f}%",
                     _n(t["irc_pings_sent"]), _n(t["irc_bytes_out"]), _n(t["ws_pings_sent"]),
                     _n(t["ws_bytes_out"]), _n(t["http_requests"]),
                     _n(t["http_bytes_out"]))
    console.print(line)
    console.print(idle_paragraph(result))


def _mib(value: int | None) -> str:
    return "-" if value is None else f"{value / 2**20:.1f}"


def _n(value: Any) -> str:
    return "-" if value is None else f"{value:,}"


def idle_paragraph(result: dict[str, Any]) -> str:
    out = []
    costs = sorted(result["modes"], key=lambda c: c["bytes_per_min_at_defaults"])
    if costs:
        cheap, dear = costs[0], costs[-1]
        out.append(f"Doing nothing costs least in {cheap['mode']} "
                   f"({fmt_num(cheap['bytes_per_min_at_defaults'])} bytes per client per minute at "
                   f"the server's default heartbeats) and most in {dear['mode']} "
                   f"({fmt_num(dear['bytes_per_min_at_defaults'])}).")
    mem = [c for c in result["modes"] if c.get("server_kib_per_client") is not None]
    if mem:
        out.append("Server memory per idle client: " + ", ".join(
            f"{c['mode']} {c['server_kib_per_client']:.1f} KiB" for c in mem) + ".")
    cpu = result["server"].get("cpu_pct_idle")
    if cpu is not None:
        out.append(f"The idle server used {cpu:.1f}% of a core.")
    return " ".join(out)
