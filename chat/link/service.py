"""Running relays: ``chat link`` (one address) and the lab's lanes (many, one process).

``chat link --listen HOST:PORT --to HOST:PORT`` puts the emulated path in front of any
server, for irssi or a browser: :func:`run_link` relays TCP (``--protocol tcp``), UDP or
both on the same port number until SIGINT/SIGTERM, then prints what crossed it.

The lab starts ``python -m chat.link.service '<spec>'``: one process with one relay per
lane and transport, so each mode's connections, ports, FINs and TIME_WAIT sockets can be
told apart by the port its clients dialled.  The spec is JSON::

    {"settings": {LinkSettings fields}, "host": "127.0.0.1",
     "lanes": {"irc": {"irc": ["127.0.0.1", 6667]}, "udp": {"http": [...], "udp": [...]}}}

It answers on stdout with JSON lines: ``{"type": "ready", "ports": {lane: {name: port}}}``
once listening, then ``{"type": "stats", "lanes": {lane: {name: counters}}}`` for every
``{"cmd": "stats"}`` line on stdin, and exits on ``{"cmd": "close"}`` or end of input.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from typing import Any

import orjson

from ..runtime import new_event_loop
from .model import LinkSettings
from .relay import Address, LinkCounters, TcpRelay, UdpRelay

log = logging.getLogger(__name__)

Relay = TcpRelay | UdpRelay


def parse_address(text: str, default_host: str = "127.0.0.1") -> Address:
    """``HOST:PORT``, ``:PORT`` or ``PORT`` -> ``(host, port)``; ValueError if malformed."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "", text
    host = host.strip("[]") or default_host
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"{text!r}: expected HOST:PORT") from None
    if not 0 <= number <= 65535:
        raise ValueError(f"{text!r}: a port is 0 to 65535")
    return host, number


async def start_relay(kind: str, settings: LinkSettings, listen: Address, upstream: Address,
                      name: str = "", counters: LinkCounters | None = None) -> Relay:
    """A started ``tcp`` or ``udp`` relay from ``listen`` to ``upstream``."""
    relay: Relay = (UdpRelay if kind == "udp" else TcpRelay)(settings, upstream, name=name,
                                                              counters=counters)
    await relay.start(*listen)
    return relay


def summary(kind: str, counters: dict[str, Any]) -> str:
    """One line of what crossed a relay (for ``chat link`` at exit)."""
    if kind == "udp":
        return (f"udp: {counters['datagrams_up']} datagrams up, {counters['datagrams_down']} "
                f"down, {counters['lost_up']}/{counters['lost_down']} lost, "
                f"{counters['reordered_down']} reordered, {counters['mappings']} mappings "
                f"({counters['mappings_expired']} expired)")
    return (f"tcp: {counters['connections']} connections from {counters['client_ports']} "
            f"ports, {counters['bytes_up']} B up, {counters['bytes_down']} B down, "
            f"FINs {counters['fins_from_client']} from clients / "
            f"{counters['fins_from_server']} from the server (closed first: clients "
            f"{counters['client_closed_first']}, server {counters['server_closed_first']}), "
            f"{counters['resets']} resets, {counters['blackholed']} black-holed, "
            f"{counters['proxy_cuts']} cut by the proxy, {counters['late_segments']} "
            f"segments late")


async def run_link(listen: Address, upstream: Address, protocols: tuple[str, ...],
                   settings: LinkSettings, out: Any = sys.stdout) -> None:
    """``chat link``: relay until SIGINT/SIGTERM, then print a summary per protocol."""
    relays: list[Relay] = []
    for kind in protocols:  # both on port 0: UDP takes the port number TCP was given
        at = (listen[0], relays[0].port) if relays and not listen[1] else listen
        relays.append(await start_relay(kind, settings, at, upstream, name=kind))
    for kind, relay in zip(protocols, relays, strict=True):
        print(f"{kind} {listen[0]}:{relay.port} -> {upstream[0]}:{upstream[1]}: "
              f"{settings.describe()}", file=out, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for kind, relay in zip(protocols, relays, strict=True):
            print(summary(kind, relay.snapshot()), file=out, flush=True)
            relay.close()


# --- the lab's lanes ---------------------------------------------------------------------------
LANE_KINDS = {"irc": "tcp", "http": "tcp", "udp": "udp"}


async def serve_lanes(spec: dict[str, Any]) -> None:
    """The lab's link process (see the module docstring)."""
    settings = LinkSettings.from_dict(spec.get("settings") or {})
    host = str(spec.get("host") or "127.0.0.1")
    relays: dict[str, dict[str, Relay]] = {}
    for lane, targets in spec["lanes"].items():
        relays[lane] = {}
        for name, upstream in targets.items():
            relays[lane][name] = await start_relay(
                LANE_KINDS[name], settings, (host, 0), (str(upstream[0]), int(upstream[1])),
                name=f"{lane}/{name}")
    emit({"type": "ready", "ports": {lane: {name: r.port for name, r in by.items()}
                                     for lane, by in relays.items()}})
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        while line := await reader.readline():
            cmd = orjson.loads(line).get("cmd")
            if cmd == "stats":
                emit({"type": "stats", "lanes": {
                    lane: {name: r.snapshot() for name, r in by.items()}
                    for lane, by in relays.items()}})
            elif cmd == "close":
                break
    finally:
        for by in relays.values():
            for relay in by.values():
                relay.close()
    emit({"type": "closed"})


def emit(report: dict[str, Any]) -> None:
    sys.stdout.write(orjson.dumps(report).decode() + "\n")
    sys.stdout.flush()


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m chat.link.service '<spec json>'", file=sys.stderr)
        return 2
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the lab decides when the link stops
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(serve_lanes(orjson.loads(argv[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
