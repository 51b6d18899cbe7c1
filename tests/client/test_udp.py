"""udp mode's losses and recovery, with the link emulator dropping datagrams by number.

The server's datagrams to the client are numbered by the relay from 1: the first is the
answer to the registration, then one per event (the first of them the peer's join).  The
keepalive is long (no ack comes in between) unless a test needs the ack to find a lost
last datagram.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from chat.link.model import LinkSettings
from chat.link.relay import TcpRelay, UdpRelay

from ..conftest import MakeServer
from .conftest import MakeClient, wait_until


@pytest.fixture
async def udp_relay() -> AsyncIterator[Any]:
    made: list[UdpRelay] = []

    async def make(port: int, listen: int = 0, **settings: Any) -> UdpRelay:
        relay = UdpRelay(LinkSettings(**settings), ("127.0.0.1", port))
        await relay.start(port=listen)
        made.append(relay)
        return relay

    yield make
    for relay in made:
        relay.close()


async def test_lost_datagrams_are_fetched_over_http_in_order(
        make_server: MakeServer, make_client: MakeClient, udp_relay: Any) -> None:
    """Datagrams 4, 6 and 7 (messages 2, 4 and 5: datagram 2 is bob's join) are dropped: all
    ten messages show once, in order; those three are marked recovered, and counted lost."""
    app = await make_server(flood_burst=0)
    relay = await udp_relay(app.udp_port, drop=(4, 6, 7))
    client, got = await make_client(app, "udp", "alice", udp_port=relay.port, keepalive=30.0)
    await wait_until(lambda: client.state == "connected" and client.counters.datagrams_in,
                     what="registered")
    peer, _ = await make_client(app, "irc", "bob")
    texts = [f"m{i}" for i in range(1, 11)]
    for text in texts:
        await peer.send("lobby", text)
    await wait_until(lambda: len(got.texts()) == 10, what="all ten")
    assert got.texts() == texts
    recovered = [e.text for e in got.events if e.recovered]
    assert recovered == ["m2", "m4", "m5"]
    counters = client.counters
    assert (counters.lost, counters.recovered) == (3, 3)
    assert relay.snapshot()["lost_down"] == 3


async def test_a_lost_last_datagram_is_found_by_the_keepalive(
        make_server: MakeServer, make_client: MakeClient, udp_relay: Any) -> None:
    """The last event's datagram is lost and nothing follows it: the next keepalive's ack
    says how many were sent, and the missing one is fetched."""
    app = await make_server(flood_burst=0)
    relay = await udp_relay(app.udp_port, drop=(5,))
    client, got = await make_client(app, "udp", "alice", udp_port=relay.port, keepalive=0.5)
    await wait_until(lambda: client.counters.datagrams_in == 1, what="registered")
    peer, _ = await make_client(app, "irc", "bob")  # its join: datagram 2
    for text in ("one", "two", "three"):   # datagrams 3, 4 and 5 (lost)
        await peer.send("lobby", text)
    await wait_until(lambda: got.texts() == ["one", "two", "three"], what="all three")
    assert [e.text for e in got.events if e.recovered] == ["three"]
    assert client.counters.lost == 1


async def test_reordered_datagrams_are_shown_in_order(
        make_server: MakeServer, make_client: MakeClient, udp_relay: Any) -> None:
    """Jitter reorders datagrams: the client counts what came after a later one, waits for
    it within its window, and shows everything in order, once, with nothing fetched."""
    app = await make_server(flood_burst=0)
    relay = await udp_relay(app.udp_port, rtt=0.02, jitter=0.01, seed=11)
    client, got = await make_client(app, "udp", "alice", udp_port=relay.port, keepalive=30.0,
                                    reorder=0.5)
    await wait_until(lambda: client.counters.datagrams_in == 1, what="registered")
    peer, _ = await make_client(app, "irc", "bob")
    texts = [f"r{i}" for i in range(40)]
    for text in texts:
        await peer.send("lobby", text)
    await wait_until(lambda: len(got.texts()) == 40, what="all forty")
    assert got.texts() == texts
    assert client.counters.reordered > 0 and relay.snapshot()["reordered_down"] > 0
    assert client.counters.lost == client.counters.recovered == 0


async def test_an_expired_nat_mapping_is_noticed_and_nothing_is_lost(
        make_server: MakeServer, make_client: MakeClient, udp_relay: Any) -> None:
    """Keepalives slower than the NAT timeout: the mapping is forgotten and what the
    server sends meanwhile is black-holed; the next keepalive makes a new mapping, the
    server moves the registration there, and the client fetches the gap."""
    app = await make_server(flood_burst=0)
    relay = await udp_relay(app.udp_port, nat_timeout=0.3)
    client, got = await make_client(app, "udp", "alice", udp_port=relay.port, keepalive=1.2)
    await wait_until(lambda: client.counters.datagrams_in == 1, what="registered")
    peer, _ = await make_client(app, "irc", "bob")
    await wait_until(lambda: client.state == "connected"
                     and any(e.kind == "join" and e.nick == "bob" for e in got.events),
                     what="settled, bob's join (the mapping's last use) in")
    # Idle past the NAT timeout counted from the last datagram (bob's join), and send
    # before the first keepalive (1.2 s after registering): a loaded machine's setup and
    # stalls get 0.75 s between the two instead of a close call.
    await asyncio.sleep(0.45)
    await peer.send("lobby", "into the void")
    await wait_until(lambda: "into the void" in got.texts(), what="the message, fetched")
    assert [e.text for e in got.events if e.recovered] == ["into the void"]
    snap = relay.snapshot()
    assert snap["mappings"] == 2 and snap["blackholed_datagrams"] >= 1
    assert app.stats.udp.rebinds == 1


async def test_behind_a_relay_on_one_port_number_the_datagrams_cross_it_too(
        make_server: MakeServer, make_client: MakeClient, udp_relay: Any) -> None:
    """The server's udp lane shares the HTTP port's number; a client that dials a relay of
    both protocols on one port number (``chat link --protocol both``) and asks the server
    for the udp port sends its datagrams to the relay's number, not around the relay."""
    for _ in range(10):  # a free TCP port's number may be taken for UDP: try another
        app = await make_server(flood_burst=0)
        if app.udp_port == app.http_port:
            break
    assert app.udp_port == app.http_port, "no port number free for both TCP and UDP"
    for _ in range(10):
        tcp = TcpRelay(LinkSettings(), ("127.0.0.1", app.http_port))
        port = await tcp.start()
        try:
            relay = await udp_relay(app.udp_port, listen=port)
            break
        except OSError:
            tcp.close()
    else:
        raise AssertionError("no relay port number free for both TCP and UDP")
    try:
        client, got = await make_client(app, "udp", "alice", http_port=port, keepalive=30.0)
        await wait_until(lambda: client.state == "connected" and client.counters.datagrams_in,
                         what="registered")
        assert relay.snapshot()["datagrams_up"] >= 1
    finally:
        tcp.close()
