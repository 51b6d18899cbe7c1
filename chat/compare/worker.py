"""One lab process: ``clients`` receivers of one mode, or the open-loop sender.

The coordinator (:mod:`chat.compare.procs`) starts one worker per mode plus one sender, so
each mode's client CPU is measured on its own and the lab spreads over the cores instead of
competing with itself in one event loop.  Run as
``python -m chat.compare.worker '<spec as JSON>'``; commands arrive as JSON lines on stdin,
reports leave as JSON lines on stdout:

=========  ==========================================  =================================
command    worker does                                 reports
=========  ==========================================  =================================
(start)    connect every client, join the room         ``ready`` (clients, errors)
``go``     zero the window (counters, CPU, clock);     ``mark``; the sender later
           the sender starts sending at ``t0``         reports ``sent``
``sample`` nothing                                     ``sample`` (window so far,
                                                       clients connected)
``drain``  wait until every receiver has every         ``result``
           expected message, or the deadline
``close``  close every client and exit                 ``closed``
=========  ==========================================  =================================

While running it also writes a ``progress`` line every quarter second.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import resource
import signal
import sys
import time
from contextlib import suppress
from typing import Any

import orjson

from ..client.transports import ChatEvent, Transport, make_transport
from ..runtime import new_event_loop
from .metrics import (
    Tally,
    encode_histogram,
    expected_seqs,
    new_histogram,
    numeric_delta,
    parse_stamp,
    record_latency,
    sum_counters,
)
from .options import WorkerSpec, client_room
from .sender import SendReport, send_open_loop

PROGRESS_EVERY = 0.25
CLOSE_TIMEOUT = 5.0


def emit(kind: str, **fields: Any) -> None:
    """Write one report line to the coordinator."""
    sys.stdout.write(orjson.dumps({"type": kind, **fields}).decode() + "\n")
    sys.stdout.flush()


class Clients:
    """The worker's transports, with one :class:`Tally` each and one shared histogram."""

    def __init__(self, spec: WorkerSpec, nicks: list[str]) -> None:
        self.spec = spec
        extra: dict[str, Any] = {} if spec.wait is None else {"wait": spec.wait}
        extra.update(spec.options)
        self.hist = new_histogram()
        self.recovered_hist = new_histogram()  # udp: the events fetched after a loss
        self.payload = 0                       # bytes of message text delivered
        self.timeline: list[tuple[int, int, float, bool]] = []  # client, seq, when, recovered
        self.states: list[tuple[int, str, float]] = []          # client, state, when
        self.tallies = [Tally() for _ in nicks]
        self.transports: list[Transport] = [
            make_transport(spec.mode, host=spec.host, irc_port=spec.irc_port,
                           http_port=spec.http_port, udp_port=spec.udp_port, nick=nick,
                           password=spec.password,
                           interval=spec.interval, on_event=self._receiver(i),
                           on_state=self._state(i), inbox=False, **extra)
            for i, nick in enumerate(nicks)]
        self.started: list[int] = []   # indices of the clients that connected and joined
        self.errors: list[str] = []
        self.delivered = 0
        self.sent = 0
        self.progressed = asyncio.Event()  # set on every new delivery (drain waits on it)

    def _receiver(self, index: int) -> Any:
        tally = self.tallies[index]
        sender = self.spec.sender_nick

        def on_event(event: ChatEvent) -> None:
            if event.kind != "message" or event.nick != sender:
                return
            stamp = parse_stamp(event.text)
            if stamp is None:
                return
            seq, intended = stamp
            if tally.record(seq):
                self.delivered += 1
                self.payload += len(event.text.encode())
                record_latency(self.hist, event.received - intended)
                if event.recovered:
                    record_latency(self.recovered_hist, event.received - intended)
                if self.spec.timeline:
                    self.timeline.append((index, seq, round(event.received, 4),
                                          event.recovered))
                self.progressed.set()
        return on_event

    def _state(self, index: int) -> Any:
        def on_state(state: str) -> None:
            if self.spec.timeline:
                self.states.append((index, state, round(time.time(), 4)))
        return on_state

    async def start(self) -> None:
        """Start and join every client, ``connect_concurrency`` at a time."""
        gate = asyncio.Semaphore(max(1, self.spec.connect_concurrency))

        async def one(index: int, transport: Transport) -> None:
            if self.spec.stagger > 0:  # independent poll phases, as real users would have
                await asyncio.sleep(random.uniform(0, self.spec.stagger))
            async with gate:
                try:
                    await transport.start()
                    for room in self._rooms(index):
                        await transport.join(room)
                    self.started.append(index)
                except Exception as exc:  # reported to the coordinator, never fatal here
                    self.errors.append(f"{type(exc).__name__}: {exc}"[:200])
                    with suppress(Exception):
                        await transport.close()
        await asyncio.gather(*(one(i, t) for i, t in enumerate(self.transports)))
        self.started.sort()

    def _rooms(self, index: int) -> tuple[str, ...]:
        spec = self.spec
        if spec.own_room:
            return (client_room(spec.room, index),)
        return (spec.room, *spec.rooms)

    def live(self) -> list[Transport]:
        return [self.transports[i] for i in self.started]

    def counters(self) -> dict[str, float]:
        return sum_counters(dataclasses.asdict(t.counters) for t in self.live())

    async def close(self) -> None:
        async def one(transport: Transport) -> None:
            with suppress(Exception):
                await asyncio.wait_for(transport.close(), CLOSE_TIMEOUT)
        await asyncio.gather(*(one(t) for t in self.live()))


class Window:
    """Counters, CPU and wall clock at ``go``, for deltas over the measured window."""

    def __init__(self, counters: dict[str, float]) -> None:
        self.counters = counters
        self.cpu = time.process_time()
        self.wall = time.monotonic()

    def since(self, counters: dict[str, float]) -> dict[str, Any]:
        return {"counters": numeric_delta(counters, self.counters),
                "cpu_s": round(time.process_time() - self.cpu, 4),
                "wall_s": round(time.monotonic() - self.wall, 4)}


async def drain(clients: Clients, sent: int, failed: list[int], deadline: float) -> list[int]:
    """Wait until every receiver saw every expected message (or ``deadline``)."""
    expected = expected_seqs(sent, failed)
    want = len(expected) * len(clients.started)
    while clients.delivered < want and (left := deadline - time.time()) > 0:
        clients.progressed.clear()
        with suppress(TimeoutError):
            await asyncio.wait_for(clients.progressed.wait(), left)
    return expected


def receive_result(clients: Clients, expected: list[int], window: Window | None) -> dict[str, Any]:
    """The worker's final figures (losses counted per client, against ``expected``)."""
    tallies = [clients.tallies[i] for i in clients.started]
    lost = [tally.missing(expected) for tally in tallies]
    counters = clients.counters()
    return {"mode": clients.spec.mode, "clients": len(clients.started),
            "expected": len(expected) * len(clients.started),
            "delivered": sum(t.unique for t in tallies), "lost": sum(lost),
            "clients_with_loss": sum(1 for n in lost if n),
            "duplicates": sum(t.duplicates for t in tallies),
            "out_of_order": sum(t.out_of_order for t in tallies),
            "histogram": encode_histogram(clients.hist),
            "recovered_histogram": encode_histogram(clients.recovered_hist),
            "payload_bytes": clients.payload, "lifetime": counters,
            "window": window.since(counters) if window else None,
            "timeline": clients.timeline, "states": clients.states}


async def commands() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


async def run(spec: WorkerSpec) -> None:
    """Serve the coordinator's commands until ``close`` or the end of stdin."""
    reader = await commands()
    prefix = spec.nick_prefix
    nicks = [spec.sender_nick] if spec.role == "send" else [
        f"{prefix}{i}" for i in range(spec.clients)]
    clients = Clients(spec, nicks)
    await clients.start()
    emit("ready", clients=len(clients.started), errors=clients.errors)
    window: Window | None = None
    sending: asyncio.Task[SendReport] | None = None
    progress_task = asyncio.create_task(report_progress(clients))
    try:
        while line := await reader.readline():
            cmd = orjson.loads(line)
            name = cmd.get("cmd")
            if name == "go":
                window = Window(clients.counters())
                emit("mark")
                if spec.role == "send" and clients.started:
                    sending = asyncio.create_task(send(clients, cmd["t0"]))
            elif name == "sample":
                emit("sample", window=window.since(clients.counters()) if window else None,
                     lifetime=clients.counters(), delivered=clients.delivered,
                     clients=len(clients.started))
            elif name == "drain":
                expected = await drain(clients, cmd["sent"], cmd["failed"], cmd["deadline"])
                emit("result", **receive_result(clients, expected, window))
            elif name == "close":
                break
    finally:
        progress_task.cancel()
        if sending is not None:
            sending.cancel()
        await clients.close()
    emit("closed")


async def send(clients: Clients, t0: float) -> SendReport:
    """Run the open-loop schedule through the worker's one client, then report ``sent``."""
    spec = clients.spec
    transport = clients.live()[0]

    async def one(text: str) -> None:
        for room in (spec.room, *spec.rooms):  # the same message, room after room
            await transport.send(room, text)

    def sent(count: int) -> None:
        clients.sent = count
    report = await send_open_loop(one, t0=t0, rate=spec.rate, duration=spec.duration,
                                  burst=spec.burst, quiet=spec.quiet, progress=sent)
    emit("sent", **report.as_dict())
    return report


async def report_progress(clients: Clients) -> None:
    """A ``progress`` line every :data:`PROGRESS_EVERY` seconds."""
    while True:
        await asyncio.sleep(PROGRESS_EVERY)
        emit("progress", delivered=clients.delivered, sent=clients.sent)


def raise_fd_limit() -> None:
    """Use the hard open-file limit: an idle scenario may hold thousands of sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m chat.compare.worker '<spec json>'", file=sys.stderr)
        return 2
    spec = WorkerSpec.from_json(argv[0])
    raise_fd_limit()
    # A Ctrl-C at the terminal reaches the whole process group; the coordinator decides
    # when a worker stops (``close``, or the end of stdin if the coordinator is gone).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(run(spec))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
