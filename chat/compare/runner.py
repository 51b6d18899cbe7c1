"""The throughput run: every mode's clients in one room while the sender publishes.

One *phase* starts a worker per mode (each with ``clients`` receivers) and one sender
worker, waits until all clients have joined (pollers join at random moments over one
interval so that, like real users, they do not poll in lockstep), snapshots the server
(``/api/stats``, CPU, memory), tells every worker ``go`` with a common start time, shows
progress while the sender publishes, lets receivers drain (a poller may still owe its last
poll), collects results and snapshots the server again.  By default all modes share one
phase (one room, one sender, as a user would run it); ``--sequential`` gives each mode its
own phase so the server's CPU can be charged to one mode.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..config import Config
from .metrics import cdf_points, decode_histogram, latency_summary, numeric_delta
from .options import LabOptions, WorkerSpec
from .procs import LabError, ServerTarget, Snapshot, WorkerHandle
from .sender import message_count
from .theory import POLL_MODES, predict

NICK_PREFIX = {"irc": "i", "ws": "w", "sse": "s", "longpoll": "l", "poll": "p", "poll-close": "c"}
START_LEAD = 0.3          # seconds between "go" and the first message
SENDER_POLL_INTERVAL = 3600.0  # an HTTP sender has no reason to poll
LAB_BOTTLENECK_PCT = 70.0


def run_tag() -> str:
    """A short random tag that keeps this run's room and nicks apart from anyone else's."""
    return secrets.token_hex(2)


@dataclass(slots=True)
class Phase:
    """What one phase measured."""

    modes: tuple[str, ...]
    sender: dict[str, Any] = field(default_factory=dict)
    receivers: dict[str, dict[str, Any]] = field(default_factory=dict)
    before: Snapshot | None = None
    after: Snapshot | None = None
    start_errors: dict[str, list[str]] = field(default_factory=dict)

    def server(self) -> dict[str, Any]:
        """Server CPU, memory and counter deltas over this phase."""
        b, a = self.before, self.after
        if b is None or a is None:
            return {}
        wall = max(a.wall - b.wall, 1e-9)
        cpu = a.cpu_s - b.cpu_s if a.cpu_s is not None and b.cpu_s is not None else None
        return {"modes": list(self.modes), "wall_s": round(wall, 3),
                "cpu_s": None if cpu is None else round(cpu, 3),
                "cpu_pct": None if cpu is None else round(100 * cpu / wall, 1),
                "rss_bytes": a.rss,
                "stats_delta": (numeric_delta(a.stats, b.stats)
                                if a.stats is not None and b.stats is not None else None)}


class ProgressView:
    """The rich progress bar: one line for the sender, one per mode."""

    def __init__(self, console: Console, enabled: bool) -> None:
        self.progress = Progress(TextColumn("{task.description:>22}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(),
                                 console=console, transient=True, disable=not enabled)
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> ProgressView:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def phase(self, modes: tuple[str, ...], messages: int, clients: int) -> None:
        for task in self.tasks.values():
            self.progress.remove_task(task)
        self.tasks = {"sender": self.progress.add_task("sent", total=messages)}
        for mode in modes:
            self.tasks[mode] = self.progress.add_task(f"{mode} delivered",
                                                      total=messages * clients)

    def update(self, name: str, completed: int) -> None:
        if name in self.tasks:
            self.progress.update(self.tasks[name], completed=completed)


async def run_phase(opts: LabOptions, target: ServerTarget, modes: tuple[str, ...],
                    tag: str, view: ProgressView) -> Phase:
    """Run one phase (see the module docstring) and return what it measured."""
    room = opts.room or f"lab{tag}"
    sender_nick = f"send{tag}"
    common: dict[str, Any] = {"host": target.host, "irc_port": target.irc_port,
              "http_port": target.http_port, "room": room, "sender_nick": sender_nick}
    specs = [WorkerSpec(role="receive", mode=m, clients=opts.clients,
                        nick_prefix=f"{NICK_PREFIX[m]}{tag}n", interval=opts.interval,
                        stagger=opts.interval if m in POLL_MODES else 0.0, **common)
             for m in modes]
    sender_mode = opts.sender_mode()
    specs.append(WorkerSpec(role="send", mode=sender_mode, clients=1, nick_prefix="",
                            interval=SENDER_POLL_INTERVAL, rate=opts.rate,
                            duration=opts.duration, **common))
    workers = list(await asyncio.gather(*(WorkerHandle.spawn(s) for s in specs)))
    receivers, sender = workers[:-1], workers[-1]
    phase = Phase(modes)
    try:
        phase.start_errors = await start_workers(workers, opts.clients)
        messages = message_count(opts.rate, opts.duration)
        view.phase(modes, messages, opts.clients)
        phase.before = await target.snapshot()
        t0 = time.time() + START_LEAD
        for worker in workers:
            worker.command("go", t0=t0)
        await asyncio.gather(*(w.expect("mark", 10.0) for w in workers))
        phase.sender = await watch_sending(sender, receivers, view, opts.duration)
        deadline = time.time() + drain_seconds(opts)
        for worker in receivers:
            worker.command("drain", sent=phase.sender["sent"], failed=phase.sender["failed"],
                           deadline=deadline)
        results = await asyncio.gather(
            *(w.expect("result", drain_seconds(opts) + 30.0) for w in receivers))
        for worker in receivers:
            view.update(worker.spec.mode, int(worker.progress.get("delivered", 0)))
        phase.after = await target.snapshot()
        phase.receivers = {r["mode"]: r for r in results}
        phase.sender["mode"] = "irc" if sender_mode == "irc" else "http"
    finally:
        await asyncio.gather(*(w.close() for w in workers))
    return phase


def drain_seconds(opts: LabOptions) -> float:
    """How long receivers may take after the last send: two poll intervals and some."""
    return 2 * opts.interval + 5.0


async def start_workers(workers: list[WorkerHandle], clients: int) -> dict[str, list[str]]:
    """Wait for every worker's ``ready``; LabError if a mode got no client at all.

    Returns the start errors of the clients that could not connect, by mode.
    """
    timeout = 30.0 + clients / 20
    readies = await asyncio.gather(*(w.expect("ready", timeout) for w in workers))
    errors: dict[str, list[str]] = {}
    for worker, ready in zip(workers, readies, strict=True):
        if ready["clients"] == 0:
            why = ready["errors"][0] if ready["errors"] else "unknown error"
            raise LabError(f"{worker.describe()}: no client could connect: {why}")
        if worker.spec.role == "receive":
            errors[worker.spec.mode] = list(ready["errors"])
    return errors


async def watch_sending(sender: WorkerHandle, receivers: list[WorkerHandle],
                        view: ProgressView, duration: float) -> dict[str, Any]:
    """Update the progress bar until the sender reports ``sent``; return that report."""
    done = asyncio.create_task(sender.expect("sent", duration + 120.0))
    try:
        while not done.done():
            view.update("sender", int(sender.progress.get("sent", 0)))
            for worker in receivers:
                view.update(worker.spec.mode, int(worker.progress.get("delivered", 0)))
            await asyncio.wait({done}, timeout=0.2)
    finally:
        # Cancelled (Ctrl-C): the sender is about to be closed, and its expect() would
        # fail with nobody left to retrieve the error.
        done.cancel()
    report = done.result()
    view.update("sender", int(report["sent"]))
    return report


def mode_figures(opts: LabOptions, mode: str, result: dict[str, Any],
                 phase: Phase) -> dict[str, Any]:
    """Every figure of one mode, normalised per client and per delivered message."""
    hist = decode_histogram(result["histogram"])
    clients = max(int(result["clients"]), 1)
    delivered = int(result["delivered"])
    window = result.get("window") or {}
    counters = window.get("counters", {})
    lifetime = result.get("lifetime", {})
    per_msg = max(delivered, 1)
    wall = float(window.get("wall_s") or 0) or 1e-9
    requests = int(counters.get("requests", 0))
    theory = predict(mode, rate=opts.rate, duration=opts.duration, interval=opts.interval,
                     window=window.get("wall_s")).as_dict()
    if theory["connections"] is None:  # poll-close: one handshake per request
        theory["connections"] = round(lifetime.get("requests", 0) / clients, 2)
    figures: dict[str, Any] = {
        "clients": int(result["clients"]), "expected": int(result["expected"]),
        "delivered": delivered, "lost": int(result["lost"]),
        "clients_with_loss": int(result["clients_with_loss"]),
        "duplicates": int(result["duplicates"]), "out_of_order": int(result["out_of_order"]),
        "latency": latency_summary(hist), "cdf": cdf_points(hist),
        "requests": requests, "requests_per_client": round(requests / clients, 2),
        "requests_per_msg": round(requests / per_msg, 3),
        "empty_polls": int(counters.get("empty_polls", 0)),
        "empty_polls_per_client": round(counters.get("empty_polls", 0) / clients, 2),
        "connections": int(counters.get("connections_opened", 0)),
        "connections_lifetime": int(lifetime.get("connections_opened", 0)),
        "connections_per_client": round(lifetime.get("connections_opened", 0) / clients, 2),
        "requests_lifetime": int(lifetime.get("requests", 0)),
        "bytes_in": int(counters.get("bytes_in", 0)),
        "bytes_out": int(counters.get("bytes_out", 0)),
        "bytes_in_per_msg": round(counters.get("bytes_in", 0) / per_msg, 1),
        "bytes_out_per_msg": round(counters.get("bytes_out", 0) / per_msg, 1),
        "events": int(counters.get("events", 0)),
        "reconnects": int(counters.get("reconnects", 0)),
        "client_cpu_s": window.get("cpu_s"),
        "client_cpu_pct": round(100 * float(window.get("cpu_s") or 0) / wall, 1),
        "wall_s": window.get("wall_s"),
        "start_errors": phase.start_errors.get(mode, []),
        "theory": theory,
    }
    if len(phase.modes) == 1:
        figures["server"] = phase.server()
    return figures


async def run_throughput(opts: LabOptions, target: ServerTarget,
                         console: Console) -> dict[str, Any]:
    """Run every phase and return the whole result (the --json document)."""
    tag = run_tag()
    groups = [(m,) for m in opts.modes] if opts.sequential else [tuple(opts.modes)]
    phases: list[Phase] = []
    with ProgressView(console, opts.progress) as view:
        for group in groups:
            phases.append(await run_phase(opts, target, group, tag, view))
    modes: dict[str, Any] = {}
    for phase in phases:
        for mode, result in phase.receivers.items():
            modes[mode] = mode_figures(opts, mode, result, phase)
    sent = sum(int(p.sender["sent"]) for p in phases)
    failed = sum(len(p.sender["failed"]) for p in phases)
    lost = sum(m["lost"] for m in modes.values())
    return {
        "scenario": "throughput",
        "options": options_dict(opts, target),
        "server": server_dict(target),
        "sender": {"mode": phases[0].sender.get("mode"), "sent": sent, "failed": failed,
                   "phases": [p.sender for p in phases]},
        "phases": [p.server() for p in phases],
        "modes": modes,
        "verdict": {"lost": lost, "failed_sends": failed,
                    "duplicates": sum(m["duplicates"] for m in modes.values()),
                    "ok": lost == 0 and failed == 0},
        "lab_warnings": lab_warnings(modes, phases),
    }


def lab_warnings(modes: dict[str, Any], phases: list[Phase]) -> list[str]:
    """Reasons to distrust the figures: a busy lab process, a lagging sender."""
    out = []
    for mode, fig in modes.items():
        if fig["client_cpu_pct"] > LAB_BOTTLENECK_PCT:
            out.append(f"the {mode} clients used {fig['client_cpu_pct']:.0f}% of a core: "
                       "the lab itself may be limiting that mode")
    for phase in phases:
        lag = float(phase.sender.get("max_lag_ms") or 0)
        if lag > 50:
            out.append(f"the sender fell up to {lag:.0f} ms behind its schedule "
                       "(counted in the latencies, as it should be)")
    return out


def options_dict(opts: LabOptions, target: ServerTarget) -> dict[str, Any]:
    return {"clients": opts.clients, "rate": opts.rate, "duration": opts.duration,
            "interval": opts.interval, "modes": list(opts.modes),
            "sequential": opts.sequential, "sender": opts.sender_mode(),
            "settings": dict(opts.settings)}


def server_dict(target: ServerTarget) -> dict[str, Any]:
    """The server under test, for the result document (all scenarios)."""
    return {"host": target.host, "irc_port": target.irc_port, "http_port": target.http_port,
            "pid": target.pid, "launched": target.own,
            "config": (dataclasses.asdict(target.config)
                       if target.config is not None else None),
            "differs_from_defaults": differs_from_defaults(target.config)}


def differs_from_defaults(config: Config | None) -> dict[str, list[Any]] | None:
    """``{name: [value, chat serve's default]}`` for the settings that differ.

    The address and ports are left out (the lab picks them); None for a server the lab did
    not start, whose settings it cannot know.
    """
    if config is None:
        return None
    defaults = Config()
    return {f.name: [getattr(config, f.name), getattr(defaults, f.name)]
            for f in dataclasses.fields(Config)
            if f.name not in ("host", "irc_port", "http_port")
            and getattr(config, f.name) != getattr(defaults, f.name)}


async def spawn_receivers(target: ServerTarget, modes: tuple[str, ...], clients: int,
                          room: str, tag: str, interval: float, wait: float | None = None,
                          ) -> tuple[list[WorkerHandle], dict[str, list[str]]]:
    """One worker per mode with ``clients`` idle receivers in ``room`` (all ready).

    Also returns the start errors of clients that could not connect, by mode.
    """
    specs = [WorkerSpec(role="receive", mode=m, clients=clients, host=target.host,
                        irc_port=target.irc_port, http_port=target.http_port, room=room,
                        nick_prefix=f"{NICK_PREFIX[m]}{tag}n", sender_nick=f"send{tag}",
                        interval=interval, wait=wait) for m in modes]
    workers = list(await asyncio.gather(*(WorkerHandle.spawn(s) for s in specs)))
    try:
        errors = await start_workers(workers, clients)
    except BaseException:
        await asyncio.gather(*(w.close() for w in workers))
        raise
    return workers, errors
