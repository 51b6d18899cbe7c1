"""The relays over loopback: each rule checked by counting and ordering, never by timing.

The "server" is a small echo server (TCP) or echo endpoint (UDP) that also notes what it
saw: EOFs, source ports.  A direct connection to it is the yardstick a relayed one is
ordered against.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator
from typing import Any

import pytest

from chat.link.model import LinkSettings
from chat.link.relay import TcpRelay, UdpRelay
from chat.link.service import parse_address

RTT = 0.2      # large against loopback, so orderings are not a close call
READ = 3.0     # the longest a test waits for bytes that should come


class Echo:
    """A TCP echo server that remembers which connections saw EOF."""

    def __init__(self) -> None:
        self.eofs = 0
        self.connections = 0
        self.server: asyncio.Server | None = None
        self.port = 0
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self.port

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                if data == b"close\n":
                    writer.close()
                    return
                writer.write(data)
            self.eofs += 1
            writer.close()  # done too: our FIN answers the client's

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for writer in self.writers:
            writer.transport.abort()


@pytest.fixture
async def echo() -> AsyncIterator[Echo]:
    server = Echo()
    await server.start()
    yield server
    server.close()


@pytest.fixture
async def relays() -> AsyncIterator[Any]:
    made: list[TcpRelay | UdpRelay] = []

    async def make(kind: str, port: int, **settings: Any) -> TcpRelay | UdpRelay:
        cls = TcpRelay if kind == "tcp" else UdpRelay
        relay = cls(LinkSettings(**settings), ("127.0.0.1", port))
        await relay.start()
        made.append(relay)
        return relay

    yield make
    for relay in made:
        relay.close()


async def dial(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def dial_sending(port: int, first: bytes) -> tuple[asyncio.StreamReader,
                                                       asyncio.StreamWriter]:
    """Connect and send ``first`` before the loop turns again: the bytes wait in the
    socket's buffer when the relay accepts, so they reach it within a loop turn of the
    connection.  (A coroutine that writes once it is resumed may, on a loaded machine,
    write later than one RTT after connecting, when no handshake is due any more.)"""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(first)
    sock.setblocking(False)
    return await asyncio.open_connection(sock=sock)


async def first_of(*readers: tuple[str, asyncio.StreamReader]) -> list[str]:
    """The names of ``readers`` in the order their next line arrives."""
    order: list[str] = []

    async def one(name: str, reader: asyncio.StreamReader) -> None:
        await asyncio.wait_for(reader.readline(), READ)
        order.append(name)
    await asyncio.gather(*(one(n, r) for n, r in readers))
    return order


async def test_relayed_bytes_arrive_after_direct_ones(echo: Echo, relays: Any) -> None:
    """The same request sent at once directly and through an RTT: the direct echo wins,
    and the relayed bytes come back whole."""
    relay = await relays("tcp", echo.port, rtt=RTT)
    slow_r, slow_w = await dial(relay.port)
    fast_r, fast_w = await dial(echo.port)
    slow_w.write(b"x" * 1000 + b"\n")
    fast_w.write(b"y\n")
    assert await first_of(("relayed", slow_r), ("direct", fast_r)) == ["direct", "relayed"]
    snap = relay.snapshot()
    assert snap["bytes_up"] == snap["bytes_down"] == 1001
    for writer in (slow_w, fast_w):
        writer.close()


async def test_the_handshake_is_paid_once_per_connection(echo: Echo, relays: Any) -> None:
    """A request on a new connection comes back after one on a warm connection sent just
    after it; the handshake is counted once per connection, however many requests."""
    relay = await relays("tcp", echo.port, rtt=RTT)
    warm_r, warm_w = await dial_sending(relay.port, b"ping\n")
    for i in range(3):
        if i:
            warm_w.write(b"ping\n")
        await asyncio.wait_for(warm_r.readline(), READ)
    assert relay.snapshot()["handshakes"] == 1
    new_r, new_w = await dial_sending(relay.port, b"first\n")  # the handshake: 1.5 RTT
    warm_w.write(b"second\n")    # sent just after it, on the warm connection: 0.5 RTT
    assert await first_of(("new", new_r), ("warm", warm_r)) == ["warm", "new"]
    snap = relay.snapshot()
    assert snap["handshakes"] == snap["connections"] == 2
    assert snap["client_ports"] == 2
    for writer in (warm_w, new_w):
        writer.close()


async def test_fins_are_relayed_and_the_first_closer_is_counted(echo: Echo,
                                                                relays: Any) -> None:
    """Client closes first: the server sees the EOF; the server closes first: the client
    does.  Each FIN is counted on its side, and who closed first."""
    relay = await relays("tcp", echo.port, rtt=0.02)
    reader, writer = await dial(relay.port)
    writer.write(b"hello\n")
    await asyncio.wait_for(reader.readline(), READ)
    writer.write_eof()
    assert await asyncio.wait_for(reader.read(), READ) == b""  # the echo server's answer
    for _ in range(100):
        if echo.eofs == 1 and relay.snapshot()["fins_from_server"] == 1:
            break
        await asyncio.sleep(0.02)
    reader2, writer2 = await dial(relay.port)
    writer2.write(b"close\n")          # the echo server closes this one first
    assert await asyncio.wait_for(reader2.read(), READ) == b""
    writer2.close()
    for _ in range(100):
        if relay.snapshot()["open"] == 0:
            break
        await asyncio.sleep(0.02)
    snap = relay.snapshot()
    assert echo.eofs == 1
    assert snap["client_closed_first"] == 1 and snap["server_closed_first"] == 1
    assert snap["fins_from_client"] == 2 and snap["fins_from_server"] == 2
    assert snap["open"] == 0 and snap["resets"] == 0
    writer.close()


async def test_nat_timeout_makes_a_half_open_connection(echo: Echo, relays: Any) -> None:
    """Idle past the NAT timeout, the flow is black-holed: what either side sends after it
    vanishes, neither side sees an EOF or a reset, and a new connection works."""
    relay = await relays("tcp", echo.port, nat_timeout=0.2)
    reader, writer = await dial(relay.port)
    writer.write(b"before\n")
    assert await asyncio.wait_for(reader.readline(), READ) == b"before\n"
    await asyncio.sleep(0.4)
    writer.write(b"into the void\n")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.readline(), 0.5)
    writer.write_eof()   # the client gives up: its FIN vanishes too
    await asyncio.sleep(0.1)
    assert echo.eofs == 0 and not reader.at_eof()
    snap = relay.snapshot()
    assert snap["blackholed"] == 1 and snap["blackholed_bytes"] == len(b"into the void\n")
    assert snap["fins_from_client"] == 1 and snap["resets"] == 0
    record = snap["records"][0]
    assert record["state"] == "black-holed" and record["client_closed_s"] is not None
    again_r, again_w = await dial(relay.port)
    again_w.write(b"after\n")
    assert await asyncio.wait_for(again_r.readline(), READ) == b"after\n"
    for w in (writer, again_w):
        w.close()


async def test_proxy_timeout_closes_both_sides(echo: Echo, relays: Any) -> None:
    """Idle past the proxy timeout, the proxy closes the client's side and the server's."""
    relay = await relays("tcp", echo.port, proxy_timeout=0.2)
    reader, writer = await dial(relay.port)
    writer.write(b"hello\n")
    assert await asyncio.wait_for(reader.readline(), READ) == b"hello\n"
    assert await asyncio.wait_for(reader.read(), READ) == b""   # the proxy's FIN
    for _ in range(100):
        if echo.eofs:
            break
        await asyncio.sleep(0.02)
    snap = relay.snapshot()
    assert echo.eofs == 1 and snap["proxy_cuts"] == 1 and snap["open"] == 0
    assert snap["records"][0]["state"] == "cut by the proxy"
    writer.close()


async def test_tcp_loss_is_lateness_not_loss(echo: Echo, relays: Any) -> None:
    """Every segment lost once: all bytes still arrive, in order, each counted late."""
    relay = await relays("tcp", echo.port, loss=1.0, seed=1)
    reader, writer = await dial(relay.port)
    lines = [f"line {i}\n".encode() for i in range(5)]
    for line in lines:
        writer.write(line)
        await asyncio.sleep(0.01)
    got = [await asyncio.wait_for(reader.readline(), READ) for _ in lines]
    assert got == lines
    assert relay.snapshot()["late_segments"] >= 2  # at least one each way
    writer.close()


async def test_a_reset_is_relayed_as_a_reset(echo: Echo, relays: Any) -> None:
    """A client that resets its connection: the server's side is reset too, and counted."""
    relay = await relays("tcp", echo.port)
    reader, writer = await dial(relay.port)
    writer.write(b"hi\n")
    await asyncio.wait_for(reader.readline(), READ)
    writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                               struct.pack("ii", 1, 0))
    writer.transport.abort()  # with a linger of 0: an RST, not a FIN
    for _ in range(100):
        if relay.snapshot()["open"] == 0:
            break
        await asyncio.sleep(0.02)
    assert relay.snapshot()["resets"] == 1 and echo.eofs == 0


class UdpEcho(asyncio.DatagramProtocol):
    """Answers every datagram with ``count`` numbered copies; notes the source ports."""

    def __init__(self, count: int = 1) -> None:
        self.count = count
        self.sources: list[int] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.sources.append(addr[1])
        assert self.transport is not None
        for n in range(1, self.count + 1):
            self.transport.sendto(b"%d" % n, addr)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class Inbox(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.got: list[bytes] = []
        self.event = asyncio.Event()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.got.append(data)
        self.event.set()


async def udp_pair(count: int, relays: Any, **settings: Any) -> tuple[Any, UdpEcho, Inbox,
                                                                      asyncio.DatagramTransport]:
    loop = asyncio.get_running_loop()
    server_t, server = await loop.create_datagram_endpoint(lambda: UdpEcho(count),
                                                           local_addr=("127.0.0.1", 0))
    port = server_t.get_extra_info("sockname")[1]
    relay = await relays("udp", port, **settings)
    client_t, inbox = await loop.create_datagram_endpoint(
        Inbox, remote_addr=("127.0.0.1", relay.port))
    return relay, server, inbox, client_t


async def settle(predicate: Any) -> None:
    for _ in range(150):
        if predicate():
            return
        await asyncio.sleep(0.02)


async def test_datagrams_on_the_drop_list_are_lost(relays: Any) -> None:
    """Ten answers to one request, numbers 3 and 7 dropped: exactly the eight others."""
    relay, _server, inbox, client = await udp_pair(10, relays, drop=(3, 7))
    client.sendto(b"go")
    await settle(lambda: len(inbox.got) >= 8 and relay.snapshot()["lost_down"] == 2)
    await asyncio.sleep(0.05)
    _server.close()
    await asyncio.sleep(0.05)
    assert sorted(int(d) for d in inbox.got) == [1, 2, 4, 5, 6, 8, 9, 10]
    snap = relay.snapshot()
    assert (snap["datagrams_down"], snap["lost_down"], snap["lost_up"]) == (10, 2, 0)
    client.close()


async def test_an_expired_mapping_comes_back_on_a_new_port(relays: Any) -> None:
    """After the NAT timeout the client's next datagram reaches the server from a new port,
    and what the server sends to the old one is black-holed."""
    relay, server, inbox, client = await udp_pair(1, relays, nat_timeout=0.2)
    client.sendto(b"one")
    await settle(lambda: len(inbox.got) == 1)
    await asyncio.sleep(0.35)
    assert server.transport is not None
    server.transport.sendto(b"late", ("127.0.0.1", server.sources[0]))  # to the old mapping
    client.sendto(b"two")
    await settle(lambda: len(inbox.got) == 2)
    await asyncio.sleep(0.05)
    assert len(set(server.sources)) == 2
    assert inbox.got == [b"1", b"1"]
    snap = relay.snapshot()
    assert snap["mappings"] == 2 and snap["mappings_expired"] == 1
    assert snap["blackholed_datagrams"] == 1
    client.close()
    server.close()


def test_addresses_parse() -> None:
    """``HOST:PORT``, ``:PORT``, ``PORT`` and IPv6 in brackets."""
    assert parse_address("10.0.0.1:80") == ("10.0.0.1", 80)
    assert parse_address(":6667") == ("127.0.0.1", 6667) == parse_address("6667")
    assert parse_address("[::1]:8080") == ("::1", 8080)
    with pytest.raises(ValueError):
        parse_address("host:port")
