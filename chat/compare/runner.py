"""The throughput run: every mode's clients in one room while the sender publishes.

Each mode's clients reach the server through the link emulator (:mod:`chat.link`), one
relay per mode and transport, so that what a mode cost in connections, ports, FINs and
TIME_WAIT sockets can be told apart (and, with ``--rtt`` and the rest, a real network's
delays apply); ``--direct`` leaves the relays out.  The sender talks to the server itself:
a message's trip is the one from the server to a client.

One *phase* starts a worker per mode (each with ``clients`` receivers) and one sender
worker, waits until all clients have joined (pollers join at random moments over one
interval so that, like real users, they do not poll in lockstep), snapshots the server
(``/api/stats``, CPU, memory), tells every worker ``go`` with a common start time, shows
progress while the sender publishes (then keeps quiet for ``--quiet`` seconds), lets
receivers drain (a poller may still owe its last poll), collects results and snapshots
the server again.  By default all modes share one phase (one room, one sender, as a user
would run it); ``--sequential`` gives each mode its own phase so the server's CPU can be
charged to one mode.  After the last phase the link's counters and the kernel's TIME_WAIT
sockets on each lane's ports are read.
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
from .figures import link_figures, mode_figures, udp_figures
from .metrics import numeric_delta
from .options import LabOptions, WorkerSpec, link_lanes
from .procs import LabError, LinkHandle, ServerTarget, Snapshot, WorkerHandle
from .sender import message_count
from .sockets import port_budget, time_wait
from .theory import POLL_MODES

NICK_PREFIX = {"irc": "i", "ws": "w", "sse": "s", "longpoll": "l", "poll": "p",
               "poll-close": "c", "udp": "u"}
CLOSE_SETTLE_S = 0.5  # after the clients closed, before FINs and TIME_WAIT are counted
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


class Lanes:
    """Where each mode's clients connect: the link's relays, or the server itself."""

    def __init__(self, target: ServerTarget, link: LinkHandle | None) -> None:
        self.target = target
        self.link = link

    def ports(self, mode: str) -> dict[str, Any]:
        """``irc_port``, ``http_port`` and ``udp_port`` for ``mode``'s clients."""
        target = self.target
        relays = self.link.ports.get(mode, {}) if self.link is not None else {}
        return {"irc_port": relays.get("irc", target.irc_port),
                "http_port": relays.get("http", target.http_port),
                "udp_port": relays.get("udp", target.udp_port)}

    @classmethod
    async def open(cls, opts: LabOptions, target: ServerTarget, modes: tuple[str, ...],
                   **settings: Any) -> Lanes:
        """The link (unless ``--direct``), with ``settings`` over ``opts.link``'s."""
        if "udp" in modes and not target.udp_port:
            await target.stats()  # a server the lab did not start says where udp is
            if not target.udp_port:
                raise LabError("the server has no udp lane (chat serve --no-udp): "
                               "leave udp out of --modes")
        if opts.direct:
            return cls(target, None)
        lanes = link_lanes(modes, target.host, target.irc_port, target.http_port,
                           target.udp_port)
        link = await LinkHandle.spawn({**opts.link.as_dict(), **settings}, lanes,
                                      target.host)
        return cls(target, link)

    async def close(self) -> None:
        if self.link is not None:
            await self.link.close()


def transport_options(opts: LabOptions, mode: str) -> dict[str, Any]:
    """The keywords a mode's transports get beyond the defaults (udp: its keepalive every
    poll interval, a reorder window wider than the jitter, the receive buffer)."""
    if mode != "udp":
        return {}
    out: dict[str, Any] = {"keepalive": opts.interval,
                           "reorder": max(0.05, 2.5 * opts.link.jitter)}
    if opts.udp_rcvbuf:
        out["rcvbuf"] = opts.udp_rcvbuf
    return out


async def run_phase(opts: LabOptions, target: ServerTarget, modes: tuple[str, ...],
                    tag: str, view: ProgressView, lanes: Lanes) -> Phase:
    """Run one phase (see the module docstring) and return what it measured."""
    room = opts.room or f"lab{tag}"
    sender_nick = f"send{tag}"
    common: dict[str, Any] = {"host": target.host, "room": room, "sender_nick": sender_nick,
                              "password": target.password}
    specs = [WorkerSpec(role="receive", mode=m, clients=opts.clients,
                        nick_prefix=f"{NICK_PREFIX[m]}{tag}n", interval=opts.interval,
                        stagger=opts.interval if m in POLL_MODES else 0.0,
                        options=transport_options(opts, m), **lanes.ports(m), **common)
             for m in modes]
    sender_mode = opts.sender_mode()
    specs.append(WorkerSpec(role="send", mode=sender_mode, clients=1, nick_prefix="",
                            interval=SENDER_POLL_INTERVAL, rate=opts.rate,
                            duration=opts.duration, quiet=opts.quiet, burst=opts.burst,
                            irc_port=target.irc_port, http_port=target.http_port,
                            udp_port=target.udp_port, **common))
    workers = list(await asyncio.gather(*(WorkerHandle.spawn(s) for s in specs)))
    receivers, sender = workers[:-1], workers[-1]
    phase = Phase(modes)
    try:
        phase.start_errors = await start_workers(workers, opts.clients)
        messages = message_count(opts.rate, opts.duration, opts.burst)
        view.phase(modes, messages, opts.clients)
        phase.before = await target.snapshot()
        t0 = time.time() + START_LEAD
        for worker in workers:
            worker.command("go", t0=t0)
        await asyncio.gather(*(w.expect("mark", 10.0) for w in workers))
        phase.sender = await watch_sending(sender, receivers, view,
                                           opts.duration + opts.quiet)
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
    """How long receivers may take after the last send: two poll intervals, a few round
    trips and retransmissions, and some."""
    link = opts.link
    return 2 * opts.interval + 5.0 + 10 * link.rtt + (link.retransmit_after * 5
                                                       if link.loss else 0.0)


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


async def run_throughput(opts: LabOptions, target: ServerTarget,
                         console: Console) -> dict[str, Any]:
    """Run every phase and return the whole result (the --json document)."""
    tag = run_tag()
    groups = [(m,) for m in opts.modes] if opts.sequential else [tuple(opts.modes)]
    phases: list[Phase] = []
    lanes = await Lanes.open(opts, target, tuple(opts.modes))
    try:
        with ProgressView(console, opts.progress) as view:
            for group in groups:
                phases.append(await run_phase(opts, target, group, tag, view, lanes))
        link_stats, waiting = await closing_figures(lanes, tuple(opts.modes))
    finally:
        await lanes.close()
    budget = port_budget()
    modes: dict[str, Any] = {}
    for phase in phases:
        for mode, result in phase.receivers.items():
            fig = modes[mode] = mode_figures(opts, mode, result)
            fig["start_errors"] = phase.start_errors.get(mode, [])
            if len(phase.modes) == 1:
                fig["server"] = phase.server()
            if mode == "udp":
                fig["udp"] = udp_figures(result)
            if lanes.link is not None:
                fig["link"] = link_figures(link_stats.get(mode, {}), waiting,
                                           lanes.link.ports.get(mode, {}), budget,
                                           fig["connections_per_s"])
    sent = sum(int(p.sender["sent"]) for p in phases)
    failed = sum(len(p.sender["failed"]) for p in phases)
    lost = sum(m["lost"] for m in modes.values())
    return {
        "scenario": "throughput",
        "options": options_dict(opts, target),
        "server": server_dict(target),
        "link": link_dict(opts, lanes),
        "port_budget": budget,
        "sender": {"mode": phases[0].sender.get("mode"), "sent": sent, "failed": failed,
                   "phases": [p.sender for p in phases]},
        "phases": [p.server() for p in phases],
        "modes": modes,
        "verdict": {"lost": lost, "failed_sends": failed,
                    "duplicates": sum(m["duplicates"] for m in modes.values()),
                    "ok": lost == 0 and failed == 0},
        "lab_warnings": lab_warnings(modes, phases),
    }


async def closing_figures(lanes: Lanes, modes: tuple[str, ...]
                          ) -> tuple[dict[str, Any], dict[int, dict[str, int]] | None]:
    """Once the clients have closed: the link's counters, and the TIME_WAIT sockets on
    the lanes' ports (none without a link: the lanes share the server's ports)."""
    if lanes.link is None:
        return {}, None
    await asyncio.sleep(CLOSE_SETTLE_S)  # the last FINs cross the link
    stats = await lanes.link.stats()
    peers = {port: stats[mode][name].get("client_ports_seen", [])
             for mode, lane in lanes.link.ports.items() for name, port in lane.items()
             if name != "udp"}
    return stats, time_wait(peers)


def link_dict(opts: LabOptions, lanes: Lanes) -> dict[str, Any]:
    """The link's settings for the result document (``None`` when ``--direct``)."""
    if lanes.link is None:
        return {"direct": True, "describe": "none: clients dial the server directly"}
    return {"direct": False, "settings": opts.link.as_dict(),
            "describe": opts.link.describe(), "ports": lanes.link.ports}


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
            "settings": dict(opts.settings), "quiet": opts.quiet, "burst": opts.burst,
            "udp_rcvbuf": opts.udp_rcvbuf, "direct": opts.direct}


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
            if f.name not in ("host", "irc_port", "http_port", "udp_port")
            and getattr(config, f.name) != getattr(defaults, f.name)}


async def spawn_receivers(target: ServerTarget, modes: tuple[str, ...], clients: int,
                          room: str, tag: str, interval: float, wait: float | None = None,
                          lanes: Lanes | None = None,
                          options: dict[str, dict[str, Any]] | None = None, **spec: Any,
                          ) -> tuple[list[WorkerHandle], dict[str, list[str]]]:
    """One worker per mode with ``clients`` idle receivers in ``room`` (all ready), through
    ``lanes`` (None: straight to the server), each mode's transports with ``options[mode]``.

    Also returns the start errors of clients that could not connect, by mode.
    """
    lanes = lanes or Lanes(target, None)
    specs = [WorkerSpec(role="receive", mode=m, clients=clients, host=target.host, room=room,
                        password=target.password,
                        nick_prefix=f"{NICK_PREFIX[m]}{tag}n", sender_nick=f"send{tag}",
                        interval=interval, wait=wait, options=(options or {}).get(m, {}),
                        **lanes.ports(m), **spec) for m in modes]
    workers = list(await asyncio.gather(*(WorkerHandle.spawn(s) for s in specs)))
    try:
        errors = await start_workers(workers, clients)
    except BaseException:
        await asyncio.gather(*(w.close() for w in workers))
        raise
    return workers, errors
