"""``--scenario dead-peer``: how long until the server notices a client that vanished.

Five *probes* join the room and then vanish without closing anything:

* irc: a raw socket registers and joins, then never reads and never answers a PING.  The
  server should drop it after ``ping_interval + ping_timeout`` of silence.
* ws: an HTTP session opens a WebSocket (a raw socket that completes the handshake), then
  never reads and never answers a Ping frame: the same bound, reason ``Ping timeout``.
* sse: an HTTP session opens an event stream, reads its response head, then never reads
  again.  SSE is one-way (heartbeat comments have no answer) and an open stream counts as
  session activity, so the server may not notice at all; the lab reports what happens.
* poll: an HTTP session joins and simply stops polling.  Its requests were its heartbeat,
  so it expires after ``session_timeout``.
* udp: an HTTP session registers a UDP address, then sends no keepalive: the registration
  ends after ``udp_timeout``, and the session, now without a hold, once
  ``session_timeout`` has passed since the last keepalive.

The probes are bare sockets on purpose: the client transports would answer pings and close
cleanly, which is exactly what a vanished peer does not do.  An observer (an irc transport)
in the room sees each probe's QUIT and its reason; the time from the probe's last word to
that QUIT is what the table shows, next to the configured bound.  Before the probes come,
``--clients`` live clients per mode sit idle in the room for a few beats of the slowest
mode, and what keeping them alive costs (PINGs, requests and bytes per client per minute)
is measured and scaled to the server's defaults; the probes' joins, quits and PINGs stay
out of that window.  Live long polls wait one ping interval, as in the idle scenario.
A launched server runs with small limits (``DEAD_PEER_SETTINGS``) so this ends in seconds.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import orjson
from rich import box
from rich.console import Console
from rich.table import Table

from ..client.transports import ChatEvent, TransportError, make_transport
from ..config import Config
from .metrics import numeric_delta
from .options import LabOptions
from .procs import LabError, ServerTarget, Snapshot, WorkerHandle, http_call
from .report import fmt_num, pace
from .runner import run_tag, server_dict, spawn_receivers

LIVE_MODES_DEFAULT = ("irc", "ws", "sse", "longpoll", "poll", "poll-close", "udp")
PROBE_MODES = ("irc", "ws", "sse", "poll", "udp")
UDP_KEEPALIVE = 15.0  # the udp transport's default keepalive interval (chat.client.udpclient)
WS_KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # any 16 bytes in base64 will do (RFC 6455 4.1)
JOIN_TIMEOUT = 10.0
LONGPOLL_WAIT = 25.0  # the transports' default long-poll wait (chat.client.base)
SETTLE_S = 0.2  # beyond one poll interval, before measuring an idle room
KEEPALIVE_BEATS = 5  # the window lasts this many of the slowest beats: a count of 5 is
#                      off by at most one, so the per-minute figures by at most a fifth
KEEPALIVE_MIN_S = 2.0


@dataclass(slots=True)
class Probe:
    """One vanished client and what became of it."""

    mode: str
    nick: str
    how: str
    bound_s: float | None
    bound_note: str
    silent_at: float = 0.0
    noticed_after_s: float | None = None
    reason: str = ""
    writer: asyncio.StreamWriter | None = field(default=None, repr=False)
    datagrams: asyncio.DatagramTransport | None = field(default=None, repr=False)

    def row(self) -> dict[str, Any]:
        noticed = self.noticed_after_s
        out: dict[str, Any] = {"mode": self.mode, "nick": self.nick, "how": self.how,
                               "bound_s": self.bound_s, "bound_note": self.bound_note,
                               "noticed_after_s": noticed, "reason": self.reason}
        out["noticed"] = noticed is not None
        out["within_bound"] = (None if self.bound_s is None or noticed is None
                               else noticed <= self.bound_s * 1.25 + 0.5)
        return out


class Observer:
    """An irc transport in the room that timestamps every JOIN and QUIT it sees."""

    def __init__(self, target: ServerTarget, nick: str) -> None:
        self.joined: dict[str, float] = {}
        self.quits: dict[str, tuple[float, str]] = {}
        self.changed = asyncio.Event()
        self.transport = make_transport(
            "irc", host=target.host, irc_port=target.irc_port, http_port=target.http_port,
            nick=nick, on_event=self.on_event, inbox=False, password=target.password)

    def on_event(self, event: ChatEvent) -> None:
        if event.kind == "join":
            self.joined.setdefault(event.nick, event.received)
        elif event.kind in ("quit", "part"):
            self.quits.setdefault(event.nick, (event.received, event.text))
        else:
            return
        self.changed.set()

    async def wait_for(self, predicate: Any, within: float) -> bool:
        """Wait until ``predicate()`` holds (True) or ``within`` seconds pass (False)."""
        deadline = time.monotonic() + within
        while not predicate():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.changed.clear()
            with suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), left)
        return True


def bounds(config: Config | None) -> dict[str, tuple[float | None, str]]:
    """The configured time each probe should be noticed within, with a note on why."""
    if config is None:
        unknown = "unknown: not a server the lab launched"
        return {m: (None, unknown) for m in PROBE_MODES}
    irc: float | None = None
    note = "ping disabled"
    if config.ping_interval > 0 and config.ping_timeout > 0:
        irc = config.ping_interval + config.ping_timeout
        note = f"ping_interval {config.ping_interval:g} + ping_timeout {config.ping_timeout:g}"
    if config.idle_timeout > 0 and (irc is None or config.idle_timeout < irc):
        irc, note = config.idle_timeout, f"idle_timeout {config.idle_timeout:g}"
    poll = config.session_timeout or None
    udp: tuple[float | None, str] = (None, "registration expiry or session expiry disabled")
    if config.udp_timeout > 0 and config.session_timeout > 0:
        # The session's clock runs from the last keepalive, and stops only once the
        # registration (its hold) is gone.
        udp = (max(config.udp_timeout, config.session_timeout),
               f"udp_timeout {config.udp_timeout:g}, then session_timeout "
               f"{config.session_timeout:g} from the last keepalive")
    return {"irc": (irc, note), "ws": (irc, note), "udp": udp,
            "sse": (None, "none: one-way heartbeats, and an open stream keeps the "
                          "session alive"),
            "poll": (poll, f"session_timeout {config.session_timeout:g}" if poll
                     else "session expiry disabled")}


async def http_session(target: ServerTarget, nick: str, room: str) -> str:
    """Create an HTTP session for ``nick`` and join ``room``; the token."""
    host, port = target.host, target.http_port
    sign_in = {"nick": nick} | ({"password": target.password} if target.password else {})
    status, data = await asyncio.to_thread(http_call, host, port, "POST", "/api/sessions",
                                           sign_in)
    if status != 201 or "token" not in data:
        raise LabError(f"probe {nick}: POST /api/sessions answered {status} {data}")
    token = str(data["token"])
    status, data = await asyncio.to_thread(http_call, host, port, "POST",
                                           f"/api/rooms/{room}/join", None, token)
    if status != 200:
        raise LabError(f"probe {nick}: join answered {status} {data}")
    return token


async def start_probe(mode: str, target: ServerTarget, room: str, nick: str,
                      bound: tuple[float | None, str]) -> Probe:
    """Bring one probe into the room and leave it silent."""
    if mode == "irc":
        probe = Probe(mode, nick, "registered and joined, then never read or answered",
                      *bound)
        _reader, writer = await asyncio.open_connection(target.host, target.irc_port)
        password = f"PASS {target.password}\r\n" if target.password else ""
        writer.write(f"{password}NICK {nick}\r\nUSER {nick} 0 * :dead peer\r\n"
                     f"JOIN #{room}\r\n".encode())
        await writer.drain()
        probe.writer = writer
    elif mode == "ws":
        probe = Probe(mode, nick, "opened a WebSocket, then never read or answered a Ping",
                      *bound)
        token = await http_session(target, nick, room)
        reader, writer = await asyncio.open_connection(target.host, target.http_port)
        writer.write((f"GET /api/ws?token={token} HTTP/1.1\r\nHost: {target.host}\r\n"
                      "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {WS_KEY}\r\n\r\n"
                      ).encode())
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), JOIN_TIMEOUT)
        if head.split(b" ", 2)[1:2] != [b"101"]:
            raise LabError(f"probe {nick}: WebSocket refused: {head[:80]!r}")
        probe.writer = writer
    elif mode == "sse":
        probe = Probe(mode, nick, "opened an event stream, then stopped reading", *bound)
        token = await http_session(target, nick, room)
        reader, writer = await asyncio.open_connection(target.host, target.http_port)
        writer.write((f"GET /api/rooms/{room}/events HTTP/1.1\r\nHost: {target.host}\r\n"
                      f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
                      ).encode())
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), JOIN_TIMEOUT)
        if head.split(b" ", 2)[1:2] != [b"200"]:
            raise LabError(f"probe {nick}: event stream refused: {head[:80]!r}")
        probe.writer = writer
    elif mode == "udp":
        probe = Probe(mode, nick, "registered a UDP address, then sent no keepalive",
                      *bound)
        token = await http_session(target, nick, room)
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            asyncio.DatagramProtocol, remote_addr=(target.host, target.udp_port))
        transport.sendto(orjson.dumps({"type": "register", "token": token, "pad": "." * 40}))
        probe.datagrams = transport
    else:
        probe = Probe(mode, nick, "joined, then stopped polling", *bound)
        await http_session(target, nick, room)
    probe.silent_at = time.time()
    return probe


def keepalive_costs(opts: LabOptions, config: Config | None, samples: list[dict[str, Any]],
                    workers: list[WorkerHandle]) -> list[dict[str, Any]]:
    """Per live mode: requests and bytes per client per minute, and at the defaults."""
    defaults = Config()
    out = []
    for worker, sample in zip(workers, samples, strict=True):
        mode = worker.spec.mode
        window = sample.get("window") or {}
        counters = window.get("counters", {})
        minutes = max(float(window.get("wall_s") or 0), 1e-9) / 60
        clients = int(sample.get("clients", worker.spec.clients))  # those that connected
        per_min = {k: round(counters.get(k, 0) / max(clients, 1) / minutes, 1)
                   for k in ("requests", "bytes_in", "bytes_out", "connections_opened")}
        beat, scale = heartbeat_interval(mode, opts, config, defaults, worker.spec.wait)
        total = per_min["bytes_in"] + per_min["bytes_out"]
        out.append({"mode": mode, "clients": clients, "heartbeat_s": beat,
                    **{f"{k}_per_min": v for k, v in per_min.items()},
                    "bytes_per_min_at_defaults": round(total * scale, 1),
                    "events": int(counters.get("events", 0)),
                    "client_cpu_s": window.get("cpu_s")})
    return out


def heartbeat_interval(mode: str, opts: LabOptions, config: Config | None,
                       defaults: Config, wait: float | None) -> tuple[float | None, float]:
    """What paces a mode's idle traffic, and the factor to scale it to the defaults."""
    if mode in ("irc", "ws"):  # the server's PINGs / Ping frames
        now = config.ping_interval if config else None
        return now, (now / defaults.ping_interval) if now and defaults.ping_interval else 1.0
    if mode == "sse":
        now = config.sse_heartbeat if config else None
        return now, (now / defaults.sse_heartbeat) if now and defaults.sse_heartbeat else 1.0
    if mode == "longpoll":
        asked = wait or LONGPOLL_WAIT
        held = min(asked, config.max_wait) if config and config.max_wait > 0 else asked
        return held, held / LONGPOLL_WAIT
    if mode == "udp":  # the client's keepalive datagrams
        beat = wait or UDP_KEEPALIVE
        return beat, beat / UDP_KEEPALIVE
    return opts.interval, 1.0


def idle_options(config: Config | None) -> dict[str, dict[str, Any]]:
    """Idle udp clients keep alive once a ping interval, as the long polls ask again."""
    beat = longpoll_wait(config)
    return {"udp": {"keepalive": beat}} if beat else {}


def longpoll_wait(config: Config | None) -> float | None:
    """The wait the lab's idle long polls ask for: one IRC ping interval.

    Then long polls beat as often as PINGs do, and a window a few beats long shows them
    (with the transports' 25 s default they would make no request at all in it).  None (the
    default) when the interval is unknown or disabled.
    """
    return config.ping_interval if config is not None and config.ping_interval > 0 else None


def keepalive_seconds(opts: LabOptions, config: Config | None, modes: tuple[str, ...]) -> float:
    """How long to watch the idle live clients: a few beats of the slowest mode.

    For a server the lab did not start its beats are unknown: ``--duration`` seconds.
    """
    if config is None:
        return opts.duration
    paces = [heartbeat_interval(m, opts, config, Config(), longpoll_wait(config))[0]
             for m in modes]
    return max(KEEPALIVE_MIN_S, KEEPALIVE_BEATS * max((p for p in paces if p), default=0.0))


@dataclass(slots=True)
class KeepAlive:
    """The live clients' keep-alive window: their samples and the server at both ends."""

    seconds: float
    samples: list[dict[str, Any]]
    before: Snapshot
    after: Snapshot


async def measure_keepalive(opts: LabOptions, target: ServerTarget,
                            workers: list[WorkerHandle], console: Console) -> KeepAlive:
    """Watch the idle live clients for :func:`keepalive_seconds`, before any probe exists.

    The probes must stay out of this window: their joins and quits are chat events the
    live clients fetch (a long poll returns for each), and the IRC probe is PINGed too.
    """
    seconds = keepalive_seconds(opts, target.config, tuple(w.spec.mode for w in workers))
    with console.status(f"measuring what keeping the live clients alive costs "
                        f"({seconds:g} s)"):
        before = await target.snapshot()
        for worker in workers:
            worker.command("go", t0=time.time())
        await asyncio.gather(*(w.expect("mark", 10.0) for w in workers))
        await asyncio.sleep(seconds)
        for worker in workers:
            worker.command("sample")
        samples = list(await asyncio.gather(*(w.expect("sample", 10.0) for w in workers)))
        after = await target.snapshot()
    return KeepAlive(seconds, samples, before, after)


async def watch_probes(target: ServerTarget, observer: Observer, room: str, tag: str,
                       watch_s: float, probes: list[Probe], console: Console) -> None:
    """Start the probes (appended to ``probes`` for cleanup) and time their QUITs."""
    limits = bounds(target.config)
    kinds = [m for m in PROBE_MODES if m != "udp" or target.udp_port]
    probes += await asyncio.gather(*(
        start_probe(m, target, room, f"dead{m[:3]}{tag}", limits[m]) for m in kinds))
    with console.status("waiting for the server to notice the vanished clients"):
        await observer.wait_for(
            lambda: all(p.nick in observer.quits for p in probes if p.bound_s), watch_s)
        await observer.wait_for(lambda: all(p.nick in observer.quits for p in probes),
                                max(0.0, watch_s - (time.time() - probes[0].silent_at)))
    for probe in probes:
        if probe.nick in observer.quits:
            seen, probe.reason = observer.quits[probe.nick]
            probe.noticed_after_s = round(seen - probe.silent_at, 3)


async def run_dead_peer(opts: LabOptions, target: ServerTarget,
                        console: Console) -> dict[str, Any]:
    """Run the scenario (see the module docstring); the --json document."""
    tag = run_tag()
    room = opts.room or f"dead{tag}"
    finite = [b for b, _ in bounds(target.config).values() if b is not None]
    watch_s = max(3.0, max(finite) * 1.5 + 1.0) if finite else opts.duration
    observer = Observer(target, f"obs{tag}")
    workers: list[WorkerHandle] = []
    if not target.udp_port:
        await target.stats()  # where the udp lane is (0: there is none)
    probes: list[Probe] = []
    try:
        try:
            await observer.transport.start()
            await observer.transport.join(room)
        except TransportError as exc:
            raise LabError(f"the observer could not join: {exc}") from None
        live = tuple(m for m in opts.modes if m in LIVE_MODES_DEFAULT
                     and (m != "udp" or target.udp_port))
        if opts.clients and live:
            workers, _errors = await spawn_receivers(
                target, live, opts.clients, room, tag, opts.interval,
                longpoll_wait(target.config), options=idle_options(target.config))
            await asyncio.sleep(opts.interval + SETTLE_S)  # pollers catch up on the joins
        keep = await measure_keepalive(opts, target, workers, console)
        await watch_probes(target, observer, room, tag, watch_s, probes, console)
    finally:
        for probe in probes:
            if probe.writer is not None:
                probe.writer.transport.abort()
            if probe.datagrams is not None:
                probe.datagrams.close()
        await asyncio.gather(*(w.close() for w in workers))
        with suppress(Exception):
            await observer.transport.close()
    costs = keepalive_costs(opts, target.config, keep.samples, workers)
    return dead_peer_result(opts, target, probes, costs, keep, watch_s)


def server_window(keep: KeepAlive, costs: list[dict[str, Any]]) -> dict[str, Any]:
    """The server over the keep-alive window; PINGs per IRC connection if IRC clients lived.

    The IRC connections then are the live irc clients and the observer, all idle alike.
    """
    before, after = keep.before, keep.after
    minutes = max(after.wall - before.wall, 1e-9) / 60
    delta = (numeric_delta(after.stats, before.stats)
             if after.stats is not None and before.stats is not None else None)
    pings = (delta or {}).get("irc", {}).get("pings_sent")
    open_now = ((before.stats or {}).get("irc") or {}).get("connections_open")
    live_irc = sum(c["clients"] for c in costs if c["mode"] == "irc")
    connections = int(open_now) if open_now is not None else live_irc + 1
    per_min = (round(pings / connections / minutes, 1)
               if live_irc and pings is not None and connections else None)
    return {"seconds": keep.seconds, "minutes": round(minutes, 4), "stats_delta": delta,
            "pings_sent": pings, "irc_connections": connections,
            "pings_per_min_per_irc_client": per_min,
            "cpu_s": (round(after.cpu_s - before.cpu_s, 3)
                      if after.cpu_s is not None and before.cpu_s is not None else None)}


def dead_peer_result(opts: LabOptions, target: ServerTarget, probes: list[Probe],
                     costs: list[dict[str, Any]], keep: KeepAlive,
                     watch_s: float) -> dict[str, Any]:
    """The --json document of the scenario."""
    return {
        "scenario": "dead-peer",
        "options": {"clients": opts.clients, "interval": opts.interval,
                    "modes": list(opts.modes), "settings": dict(opts.settings)},
        "server": server_dict(target),
        "watched_s": round(watch_s, 3),
        "probes": [p.row() for p in probes],
        "keepalive": costs,
        "server_window": server_window(keep, costs),
        "rows": [{"kind": "probe", **p.row()} for p in probes]
        + [{"kind": "keepalive", **c} for c in costs],
        "verdict": {"ok": all(p.row()["within_bound"] is not False for p in probes)
                    and all(p.noticed_after_s is not None for p in probes if p.bound_s)},
    }


def show_dead_peer(result: dict[str, Any], console: Console) -> None:
    """Two tables (probes, keep-alive cost) and a paragraph."""
    table = Table(title="Dead peers: time until the server noticed", box=box.SIMPLE_HEAD,
                  title_justify="left")
    for name in ("probe", "how it vanished", "noticed after", "configured bound", "reason"):
        table.add_column(name)
    for p in result["probes"]:
        after = (f"{p['noticed_after_s']:.2f} s" if p["noticed"]
                 else f"[bold red]not within {result['watched_s']:.0f} s[/]")
        bound = f"{p['bound_s']:g} s: {p['bound_note']}" if p["bound_s"] else p["bound_note"]
        table.add_row(p["mode"], p["how"], after, bound, p["reason"] or "-")
    console.print(table)
    window = result["server_window"]
    cost = Table(title=f"Keeping the live clients alive: per client per minute, measured "
                       f"over {window['seconds']:g} s before the probes joined",
                 caption="paced by: ping interval (irc, ws), heartbeat (sse), wait (longpoll), "
                         "poll interval; @def: bytes scaled to the server's default "
                         "heartbeat intervals", caption_justify="left",
                 box=box.SIMPLE_HEAD, title_justify="left")
    for name in ("mode", "clients", "paced by", "req", "B in", "B out", "conns", "B @def"):
        cost.add_column(name, justify="right", no_wrap=name == "mode")
    for c in result["keepalive"]:
        cost.add_row(c["mode"], str(c["clients"]), pace(c["heartbeat_s"]),
                     *(fmt_num(c[k]) for k in ("requests_per_min", "bytes_in_per_min",
                                               "bytes_out_per_min", "connections_opened_per_min",
                                               "bytes_per_min_at_defaults")))
    if result["keepalive"]:
        console.print(cost)
    console.print(dead_peer_paragraph(result))


def dead_peer_paragraph(result: dict[str, Any]) -> str:
    out = []
    for p in result["probes"]:
        if p["noticed"]:
            bound = f" (bound {p['bound_s']:g} s)" if p["bound_s"] else ""
            out.append(f"The vanished {p['mode']} client was dropped after "
                       f"{p['noticed_after_s']:.1f} s{bound}: {p['reason'] or 'no reason'}.")
        elif p["mode"] == "sse":
            out.append(f"The vanished sse client was still considered present after "
                       f"{result['watched_s']:.0f} s: its heartbeats need no answer and its "
                       "open stream counts as activity, so only TCP giving up "
                       "(retransmission timeouts, minutes) or a full send buffer would "
                       "reveal it.")
        else:
            out.append(f"The vanished {p['mode']} client was still considered present after "
                       f"{result['watched_s']:.0f} s ({p['bound_note']}).")
    srv = result["server_window"]
    if srv.get("pings_per_min_per_irc_client") == 0:
        out.append(f"The server sent no PING to its {srv['irc_connections']} IRC connections "
                   f"in the {srv['seconds']:g} s before the probes joined.")
    elif srv.get("pings_per_min_per_irc_client") is not None:
        whose = ("the live irc clients and the lab's observer" if result["server"]["launched"]
                 else "everyone's, the lab's included")
        out.append(f"Before the probes joined, the server sent "
                   f"{srv['pings_per_min_per_irc_client']:g} PINGs per IRC connection per "
                   f"minute (over {srv['seconds']:g} s, to the {srv['irc_connections']} "
                   f"connections open then: {whose}) to keep them honest.")
    return " ".join(out)
