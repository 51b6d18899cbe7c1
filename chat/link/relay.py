"""The link emulator's asyncio side: TCP and UDP relays that apply :mod:`chat.link.model`.

A :class:`TcpRelay` listens for clients and opens one upstream connection to the server
per client; every chunk either side sends goes into that direction's queue with the time
the model says it arrives, and one ``call_at`` per direction delivers what is due (a chunk
never overtakes an earlier one).  FINs are relayed as FINs, after the bytes sent before
them, so the side that closed first on the client's hop is the same as on the server's
(and the TIME_WAIT lands where it would without the relay).  A reset is relayed as a
reset.  The proxy's idle cut is one lazily moved ``call_at`` per flow; the NAT's black hole
needs no timer (the next byte finds out).  Flow control: a queue holding more than
:data:`QUEUE_LIMIT` bytes, or a receiving side whose transport paused writing, pauses
reading from the sending side.

A :class:`UdpRelay` forwards datagrams through a :class:`~chat.link.model.NatTable`: one
upstream socket (an outside port) per live mapping, so a client whose mapping expired
reaches the server from a new port.  Deliveries wait in one heap with one timer per relay.

Both count what crossed them in :class:`LinkCounters`: connections, the distinct client
ports, FINs from each side and who closed first, handshakes, resets, black holes, proxy
cuts, late (retransmitted) segments, datagrams lost and reordered, mappings.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import random
import socket
import struct
import time
from collections import deque
from contextlib import suppress
from typing import Any

from .model import (
    FLOW_RECORDS_KEPT,
    NEVER,
    DatagramPath,
    Direction,
    Flow,
    LinkSettings,
    Mapping,
    NatTable,
)

log = logging.getLogger(__name__)

QUEUE_LIMIT = 1 << 20   # bytes one direction of a flow may hold before reading pauses
DUE_SLACK = 0.0005      # deliver what is due within half a millisecond in the same turn
FIN = b""               # a queue entry that stands for the FIN
DEAD_SOCKET_S = 60.0    # how long an expired mapping's socket keeps swallowing datagrams
Address = tuple[str, int]
LINGER_RESET = struct.pack("ii", 1, 0)


class LinkCounters:
    """What crossed one listener (plain numbers, JSON-ready through :meth:`snapshot`)."""

    __slots__ = ("connections", "open", "client_ports", "handshakes", "bytes_up",
                 "bytes_down", "fins_from_client", "fins_from_server", "client_closed_first",
                 "server_closed_first", "resets", "blackholed", "blackholed_bytes",
                 "proxy_cuts", "late_segments", "upstream_failed", "datagrams_up",
                 "datagrams_down", "lost_up", "lost_down", "reordered_down", "reordered_up",
                 "mappings", "mappings_expired", "blackholed_datagrams", "records",
                 "mapping_ports")

    def __init__(self) -> None:
        self.connections = 0
        self.open = 0
        self.client_ports: set[int] = set()
        self.handshakes = 0
        self.bytes_up = 0
        self.bytes_down = 0
        self.fins_from_client = 0
        self.fins_from_server = 0
        self.client_closed_first = 0
        self.server_closed_first = 0
        self.resets = 0
        self.blackholed = 0
        self.blackholed_bytes = 0
        self.proxy_cuts = 0
        self.late_segments = 0
        self.upstream_failed = 0
        self.datagrams_up = 0
        self.datagrams_down = 0
        self.lost_up = 0
        self.lost_down = 0
        self.reordered_up = 0
        self.reordered_down = 0
        self.mappings = 0
        self.mappings_expired = 0
        self.blackholed_datagrams = 0
        self.mapping_ports: set[int] = set()
        self.records: deque[dict[str, Any]] = deque(maxlen=FLOW_RECORDS_KEPT)

    def snapshot(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.__slots__:
            value = getattr(self, name)
            if isinstance(value, set):
                out[name] = len(value)
                out[name + "_seen"] = sorted(value)  # the ports, to find their sockets
            elif isinstance(value, deque):
                out[name] = list(value)
            else:
                out[name] = value
        return out


def wall_of(loop_time: float, loop: asyncio.AbstractEventLoop) -> float:
    """The unix time of a loop-clock instant (for records other processes compare)."""
    return time.time() - (loop.time() - loop_time)


class _End(asyncio.Protocol):
    """One side of a relayed connection: the client's, or the upstream one."""

    __slots__ = ("relayed", "sends", "transport", "closing")

    def __init__(self, relayed: Relayed | None, sends: Direction) -> None:
        self.relayed = relayed
        self.sends = sends       # the direction of the bytes this side sends us
        self.transport: asyncio.Transport | None = None
        self.closing = False     # we closed or aborted it ourselves

    def data_received(self, data: bytes) -> None:
        if self.relayed is not None:
            self.relayed.receive(self.sends, data)

    def eof_received(self) -> bool:
        if self.relayed is not None:
            self.relayed.fin(self.sends)
        return True  # stay half-open: the other way may still carry bytes

    def connection_lost(self, exc: Exception | None) -> None:
        if self.relayed is not None and not self.closing:
            self.relayed.lost(self.sends)

    def pause_writing(self) -> None:
        if self.relayed is not None:  # we receive what travels the other way
            self.relayed.target_paused(Direction(1 - self.sends), True)

    def resume_writing(self) -> None:
        if self.relayed is not None:
            self.relayed.target_paused(Direction(1 - self.sends), False)

    def close(self, abort: bool = False) -> None:
        """Close our side (a FIN after what is buffered), or with ``abort`` reset it."""
        if self.transport is not None and not self.closing:
            self.closing = True
            if abort:
                sock = self.transport.get_extra_info("socket")
                if sock is not None:  # a linger of 0 makes the close an RST, not a FIN
                    with suppress(OSError):
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
                self.transport.abort()
            else:
                self.transport.close()


class _ClientEnd(_End):
    """The client's side: accepting it creates the flow and dials the server."""

    __slots__ = ("relay",)

    def __init__(self, relay: TcpRelay) -> None:
        super().__init__(None, Direction.UP)
        self.relay = relay

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.relayed = self.relay.accepted(self)


class _UpstreamEnd(_End):
    __slots__ = ()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self.relayed is not None:
            self.relayed.upstream_ready()


class Relayed:
    """One connection through the link: its :class:`Flow`, both ends, two delivery queues.

    ``queues[d]`` holds ``(due, bytes)`` travelling in direction ``d`` (``FIN`` for the
    sending side's FIN); one timer per direction delivers the head when it is due.
    """

    __slots__ = ("relay", "flow", "client", "upstream", "queues", "queued", "timers",
                 "paused_targets", "reading_paused", "idle", "done", "client_port",
                 "first_fin_seen")

    def __init__(self, relay: TcpRelay, client: _ClientEnd, now: float) -> None:
        self.relay = relay
        self.flow = Flow(relay.settings, now, relay.rng)
        self.client = client
        self.upstream = _UpstreamEnd(self, Direction.DOWN)
        self.queues: tuple[deque[tuple[float, bytes]], deque[tuple[float, bytes]]] = (
            deque(), deque())
        self.queued = [0, 0]
        self.timers: list[asyncio.TimerHandle | None] = [None, None]
        self.paused_targets = [False, False]
        self.reading_paused = [False, False]
        self.idle: asyncio.TimerHandle | None = None
        self.done = False
        self.client_port = 0
        self.first_fin_seen = False

    # --- the ends ------------------------------------------------------------------------
    def sender(self, direction: Direction) -> _End:
        return self.client if direction is Direction.UP else self.upstream

    def target(self, direction: Direction) -> _End:
        return self.upstream if direction is Direction.UP else self.client

    def upstream_ready(self) -> None:
        self._arm(Direction.UP)
        self._arm(Direction.DOWN)
        self._arm_idle()

    # --- bytes and FINs in -----------------------------------------------------------------
    def receive(self, direction: Direction, data: bytes) -> None:
        flow, counters = self.flow, self.relay.counters
        waited = flow.handshake_waited
        lost = flow.lost_segments
        due = flow.receive(direction, len(data), self.relay.loop.time())
        if due is None:
            counters.blackholed_bytes += len(data)
            return
        if direction is Direction.UP:
            counters.bytes_up += len(data)
        else:
            counters.bytes_down += len(data)
        if flow.handshake_waited and not waited:
            counters.handshakes += 1
        counters.late_segments += flow.lost_segments - lost
        self._queue(direction, due, data)

    def fin(self, direction: Direction) -> None:
        flow, counters = self.flow, self.relay.counters
        due = flow.fin(direction, self.relay.loop.time())
        if direction is Direction.UP:
            counters.fins_from_client += 1
            if due is not None:
                self._first_on_client_hop(Direction.UP)
        else:
            counters.fins_from_server += 1
        if due is None:
            self._maybe_finish()
            return
        self._queue(direction, due, FIN)

    def lost(self, direction: Direction) -> None:
        """A side's connection ended without us closing it (a reset, or its FIN'd socket
        closed): abort the other side, unless the flow is black-holed."""
        if self.done:
            return
        self.sender(direction).closing = True
        if self.flow.reset(direction, self.relay.loop.time()):
            self.relay.counters.resets += 1
            self.target(direction).close(abort=True)
            self.finish()
            return
        self._maybe_finish()

    # --- delivery ------------------------------------------------------------------------------
    def _queue(self, direction: Direction, due: float, data: bytes) -> None:
        self.queues[direction].append((due, data))
        self.queued[direction] += len(data)
        if self.queued[direction] > QUEUE_LIMIT:
            self._pause_reading(direction, True)
        self._arm(direction)

    def _arm(self, direction: Direction) -> None:
        queue = self.queues[direction]
        if self.timers[direction] is not None or not queue or self.done:
            return
        if self.target(direction).transport is None:
            return  # the upstream connection is not there yet
        self.timers[direction] = self.relay.loop.call_at(queue[0][0], self._deliver, direction)

    def _deliver(self, direction: Direction) -> None:
        self.timers[direction] = None
        queue, target = self.queues[direction], self.target(direction)
        transport = target.transport
        if transport is None or target.closing:
            return
        horizon = self.relay.loop.time() + DUE_SLACK
        chunks: list[bytes] = []
        eof = False
        while queue and queue[0][0] <= horizon:
            _due, data = queue.popleft()
            if data is FIN:
                eof = True
                break
            chunks.append(data)
            self.queued[direction] -= len(data)
        if chunks:
            transport.write(b"".join(chunks))
        if eof:
            if direction is Direction.DOWN:
                self._first_on_client_hop(Direction.DOWN)
            if transport.can_write_eof():
                transport.write_eof()
            else:
                target.close()
            self._maybe_finish()
        if self.reading_paused[direction] and self.queued[direction] < QUEUE_LIMIT // 2:
            self._pause_reading(direction, False)
        self._arm(direction)

    def _first_on_client_hop(self, direction: Direction) -> None:
        """Who sent the first FIN on the client's hop: the client, or we on the server's
        behalf, when its FIN reached the client.  (That side keeps the TIME_WAIT there.)"""
        if self.first_fin_seen:
            return
        self.first_fin_seen = True
        if direction is Direction.UP:
            self.relay.counters.client_closed_first += 1
        else:
            self.relay.counters.server_closed_first += 1

    def target_paused(self, direction: Direction, paused: bool) -> None:
        """The side receiving ``direction`` paused (or resumed) writing: stop (or go on)
        reading from the side that sends it."""
        self.paused_targets[direction] = paused
        self._pause_reading(direction, paused)

    def _pause_reading(self, direction: Direction, pause: bool) -> None:
        if not pause and (self.paused_targets[direction]
                          or self.queued[direction] > QUEUE_LIMIT // 2):
            return
        transport = self.sender(direction).transport
        if transport is None or self.reading_paused[direction] == pause:
            return
        self.reading_paused[direction] = pause
        with suppress(RuntimeError, AttributeError):
            (transport.pause_reading if pause else transport.resume_reading)()

    # --- the proxy's idle cut ----------------------------------------------------------------
    def _arm_idle(self) -> None:
        deadline = self.flow.deadline()
        if deadline < NEVER and self.idle is None and not self.done:
            self.idle = self.relay.loop.call_at(deadline, self._idle_fired)

    def _idle_fired(self) -> None:
        self.idle = None
        if self.done:
            return
        if self.flow.expire(self.relay.loop.time()):
            self.relay.counters.proxy_cuts += 1
            self.client.close()
            self.upstream.close()
            self.finish()
            return
        self._arm_idle()  # there was traffic meanwhile: the deadline moved on

    # --- the end -------------------------------------------------------------------------------
    def _maybe_finish(self) -> None:
        flow = self.flow
        if flow.finished and not self.done:
            # Both FINs passed, or both sides closed into a black hole: close our ends (our
            # socket on each hop closes second, or first where we delivered the first FIN).
            if not any(self.queues):
                self.client.close()
                self.upstream.close()
                self.finish()

    def finish(self) -> None:
        """Forget the flow: timers off, its record kept if something happened to it."""
        if self.done:
            return
        self.done = True
        for handle in (*self.timers, self.idle):
            if handle is not None:
                handle.cancel()
        self.relay.forget(self)

    def record(self) -> dict[str, Any]:
        loop = self.relay.loop
        out = self.flow.record()
        out["opened"] = round(wall_of(self.flow.opened_at, loop), 4)
        out["client_port"] = self.client_port
        return out


class TcpRelay:
    """Clients connect here; each is relayed to ``upstream`` through its own :class:`Flow`."""

    def __init__(self, settings: LinkSettings, upstream: Address, *,
                 counters: LinkCounters | None = None, name: str = "") -> None:
        self.settings = settings
        self.upstream = upstream
        self.counters = counters or LinkCounters()
        self.name = name
        self.rng = random.Random(settings.seed)
        self.flows: set[Relayed] = set()
        self.server: asyncio.Server | None = None
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None
        return self._loop

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen on ``host:port`` (0: a free port); the port."""
        self._loop = asyncio.get_running_loop()
        self.server = await self.loop.create_server(lambda: _ClientEnd(self), host, port)
        self.port = int(self.server.sockets[0].getsockname()[1])
        return self.port

    def accepted(self, client: _ClientEnd) -> Relayed:
        relayed = Relayed(self, client, self.loop.time())
        counters = self.counters
        counters.connections += 1
        counters.open += 1
        assert client.transport is not None
        peer = client.transport.get_extra_info("peername")
        if peer:
            relayed.client_port = int(peer[1])
            counters.client_ports.add(relayed.client_port)
        sock = client.transport.get_extra_info("socket")
        if sock is not None:
            with suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.flows.add(relayed)
        self.loop.create_task(self._dial(relayed))
        return relayed

    async def _dial(self, relayed: Relayed) -> None:
        host, port = self.upstream
        try:
            await self.loop.create_connection(lambda: relayed.upstream, host, port)
        except OSError as exc:
            log.info("link %s: upstream %s:%d refused: %s", self.name, host, port, exc)
            self.counters.upstream_failed += 1
            relayed.client.close(abort=True)
            relayed.finish()
            return
        sock = relayed.upstream.transport.get_extra_info("socket") \
            if relayed.upstream.transport else None
        if sock is not None:
            with suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if relayed.done:
            relayed.upstream.close(abort=True)

    def forget(self, relayed: Relayed) -> None:
        if relayed in self.flows:
            self.flows.discard(relayed)
            self.counters.open -= 1
            flow = relayed.flow
            if flow.blackholed_at is not None:
                self.counters.blackholed += 1
            if flow.blackholed_at is not None or flow.cut_at is not None:
                self.counters.records.append(relayed.record())

    def snapshot(self) -> dict[str, Any]:
        """The counters, with the live flows a NAT has forgotten by now counted in (their
        records too): a black hole is only noticed by the next byte, so look now."""
        now = self.loop.time() if self._loop is not None else 0.0
        out = self.counters.snapshot()
        for relayed in self.flows:
            relayed.flow.notice_idle(now)
            if relayed.flow.blackholed_at is not None:
                out["blackholed"] += 1
            if relayed.flow.blackholed_at is not None or relayed.flow.cut_at is not None:
                out["records"].append(relayed.record())
        return out

    def close(self) -> None:
        """Stop listening and abort every flow."""
        if self.server is not None:
            self.server.close()
        for relayed in list(self.flows):
            relayed.client.close(abort=True)
            relayed.upstream.close(abort=True)
            relayed.finish()


class _ListenSide(asyncio.DatagramProtocol):
    __slots__ = ("relay",)

    def __init__(self, relay: UdpRelay) -> None:
        self.relay = relay

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.relay.from_client(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        log.debug("link %s: %s", self.relay.name, exc)


class _MappingSide(asyncio.DatagramProtocol):
    """The socket of one NAT mapping (its outside port), connected to the server."""

    __slots__ = ("relay", "mapping_id", "sock", "transport")

    def __init__(self, relay: UdpRelay, mapping_id: int, sock: socket.socket) -> None:
        self.relay = relay
        self.mapping_id = mapping_id
        self.sock = sock
        self.transport: asyncio.DatagramTransport | None = None

    def send(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.sendto(data)
        else:  # the endpoint is being set up: the socket is connected already
            with suppress(OSError):
                self.sock.send(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
        elif not self.relay.closed:
            self.sock.close()
        # (else the endpoint being set up closes itself, and the socket with it)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self.relay.closed:  # the relay closed while the endpoint was being set up
            transport.close()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.relay.from_server(self.mapping_id, data)

    def error_received(self, exc: Exception) -> None:
        log.debug("link %s: mapping %d: %s", self.relay.name, self.mapping_id, exc)


class UdpRelay:
    """Datagrams from clients to ``upstream`` and back, one outside port per NAT mapping."""

    def __init__(self, settings: LinkSettings, upstream: Address, *,
                 counters: LinkCounters | None = None, name: str = "") -> None:
        self.settings = settings
        self.upstream = upstream
        self.counters = counters or LinkCounters()
        self.name = name
        self.path = DatagramPath(settings)
        self.nat = NatTable(settings.nat_timeout)
        self.sides: dict[int, _MappingSide] = {}
        self.dead: list[tuple[float, _MappingSide]] = []  # expired mappings' sockets
        self.clients: dict[int, Address] = {}
        self.heap: list[tuple[float, int, Any]] = []
        self.order = itertools.count()
        self.timer: asyncio.TimerHandle | None = None
        self.listen: asyncio.DatagramTransport | None = None
        self.port = 0
        self.closed = False
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None
        return self._loop

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self._loop = asyncio.get_running_loop()
        transport, _ = await self.loop.create_datagram_endpoint(
            lambda: _ListenSide(self), local_addr=(host, port))
        self.listen = transport
        self.port = int(transport.get_extra_info("sockname")[1])
        return self.port

    def from_client(self, data: bytes, client: Address) -> None:
        now = self.loop.time()
        mapping, old = self.nat.outbound(client, now)
        counters = self.counters
        counters.datagrams_up += 1
        if old is not None:
            self._bury(old.id, now)
            loop = self.loop
            if len(counters.records) < FLOW_RECORDS_KEPT:  # what the NAT did to this client
                counters.records.append({
                    "state": "remapped", "client_port": client[1],
                    "blackholed": round(wall_of(self.nat.expired_at(old), loop), 4),
                    "remapped": round(wall_of(now, loop), 4)})
        if mapping.id not in self.sides:
            self._open_mapping(mapping, now)
        due = self.path.send(Direction.UP, len(data), now)
        self._count_path()
        if due is not None:
            counters.bytes_up += len(data)
            self._schedule(due, ("up", mapping.id, data))

    def _open_mapping(self, mapping: Mapping, now: float) -> None:
        """A new outside port for ``mapping`` (a socket connected to the server)."""
        host = self.upstream[0]
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                             socket.SOCK_DGRAM)
        sock.setblocking(False)
        sock.bind(("127.0.0.1" if host.startswith("127.") else "", 0))
        sock.connect(self.upstream)
        side = _MappingSide(self, mapping.id, sock)
        self.sides[mapping.id] = side
        self.clients[mapping.id] = mapping.client
        self.counters.mappings += 1
        self.counters.mapping_ports.add(int(sock.getsockname()[1]))
        self.loop.create_task(self.loop.create_datagram_endpoint(lambda: side, sock=sock))
        self._reap_dead(now)

    def _bury(self, mapping_id: int, now: float) -> None:
        """An expired mapping's socket swallows what still comes to it for a while (a NAT
        drops it silently; closing the socket would make the kernel answer ICMP)."""
        side = self.sides.pop(mapping_id, None)
        if side is not None:
            self.dead.append((now, side))
        self.counters.mappings_expired = self.nat.expired

    def _reap_dead(self, now: float) -> None:
        keep = []
        for since, side in self.dead:
            if now - since > DEAD_SOCKET_S:
                side.close()
            else:
                keep.append((since, side))
        self.dead = keep

    def from_server(self, mapping_id: int, data: bytes) -> None:
        now = self.loop.time()
        counters = self.counters
        if self.nat.inbound(mapping_id, now) is None or mapping_id not in self.sides:
            counters.blackholed_datagrams += 1
            self._bury(mapping_id, now)
            return
        counters.datagrams_down += 1
        due = self.path.send(Direction.DOWN, len(data), now)
        self._count_path()
        if due is not None:
            counters.bytes_down += len(data)
            self._schedule(due, ("down", mapping_id, data))

    def snapshot(self) -> dict[str, Any]:
        return self.counters.snapshot()

    def _count_path(self) -> None:
        path, counters = self.path, self.counters
        counters.lost_up, counters.lost_down = path.lost
        counters.reordered_up, counters.reordered_down = path.reordered

    def _schedule(self, due: float, item: Any) -> None:
        heapq.heappush(self.heap, (due, next(self.order), item))
        if self.timer is None or self.heap[0][0] < self.timer.when():
            if self.timer is not None:
                self.timer.cancel()
            self.timer = self.loop.call_at(self.heap[0][0], self._deliver)

    def _deliver(self) -> None:
        self.timer = None
        horizon = self.loop.time() + DUE_SLACK
        while self.heap and self.heap[0][0] <= horizon:
            _due, _n, (way, mapping_id, data) = heapq.heappop(self.heap)
            if way == "up":
                side = self.sides.get(mapping_id)
                if side is not None:
                    side.send(data)
            elif self.listen is not None and mapping_id in self.clients:
                self.listen.sendto(data, self.clients[mapping_id])
        if self.heap:
            self.timer = self.loop.call_at(self.heap[0][0], self._deliver)

    def close(self) -> None:
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
        if self.listen is not None:
            self.listen.close()
        for side in [*self.sides.values(), *(s for _t, s in self.dead)]:
            side.close()
