"""Staying connected: drops, dead links and server restarts lose nothing, repeat nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from chat.client.transports import MODES, make_transport
from chat.link.model import DatagramPath, LinkSettings
from chat.link.relay import UdpRelay

from ..conftest import MakeServer
from .conftest import MakeClient, MakeRelay, wait_until


@pytest.mark.parametrize("mode", MODES)
async def test_reconnect_after_server_drops_connection(
        make_server: MakeServer, make_client: MakeClient, relays: MakeRelay, mode: str) -> None:
    """Cut every connection and refuse new ones for a while: all messages arrive once."""
    app = await make_server(flood_burst=0)
    irc_relay = await relays(app.irc_port)
    http_relay = await relays(app.http_port)
    extra: dict[str, Any] = {}
    if mode == "udp":  # its datagrams go through a relay that can lose them all
        udp_relay = UdpRelay(LinkSettings(), ("127.0.0.1", app.udp_port))
        extra["udp_port"] = await udp_relay.start()
    client, got = await make_client(app, mode, "alice", irc_port=irc_relay.port,
                                    http_port=http_relay.port, **extra)
    peer, _ = await make_client(app, "irc", "bob")
    await peer.send("lobby", "before")
    await wait_until(lambda: "before" in got.texts(), what="first message")
    for relay in (irc_relay, http_relay):
        relay.refusing = True
        relay.drop()
    if mode == "udp":
        udp_relay.path = DatagramPath(LinkSettings(loss=1.0))
    for i in range(3):
        await peer.send("lobby", f"during {i}")
    await wait_until(lambda: client.state == "reconnecting", what="reconnecting state")
    await asyncio.sleep(0.2)  # a few refused attempts, with backoff
    irc_relay.refusing = http_relay.refusing = False
    if mode == "udp":
        udp_relay.path = DatagramPath(LinkSettings())
    await peer.send("lobby", "after")
    await wait_until(lambda: "after" in got.texts(), what="message after the outage")
    assert got.texts() == ["before", "during 0", "during 1", "during 2", "after"]
    await wait_until(lambda: client.state == "connected", what="connected state")
    assert client.counters.reconnects >= 1
    assert got.states.count("reconnecting") >= 1
    if mode == "udp":
        udp_relay.close()


@pytest.mark.parametrize("mode", MODES)
async def test_reconnect_after_server_restart(make_server: MakeServer, make_client: MakeClient,
                                              mode: str) -> None:
    """A restart on the same ports (ids start over) is noticed: new events are not dropped."""
    app = await make_server(flood_burst=0)
    client, got = await make_client(app, mode, "alice")
    peer, _ = await make_client(app, "irc", "bob")
    for i in range(6):
        await peer.send("lobby", f"old {i}")
    await wait_until(lambda: len(got.texts()) == 6, what="messages before the restart")
    await app.shutdown()
    app2 = await make_server(flood_burst=0, irc_port=app.irc_port, http_port=app.http_port)
    await wait_until(lambda: peer.state == "connected" and peer.counters.reconnects == 1,
                     what="peer back")
    await wait_until(lambda: app2.engine.find_user("bob") is not None
                     and app2.engine.find_room("#lobby") is not None, what="peer in the room")
    for i in range(3):
        await peer.send("lobby", f"new {i}")
    await wait_until(lambda: "new 2" in got.texts(), what="messages after the restart")
    await asyncio.sleep(0.2)  # room for a duplicate to show up, if any
    assert got.texts() == [f"old {i}" for i in range(6)] + [f"new {i}" for i in range(3)]
    await wait_until(lambda: client.state == "connected", what="connected state")
    assert client.counters.reconnects >= 1


@pytest.mark.parametrize("mode", ["irc", "sse"])
async def test_silent_server_is_noticed(make_server: MakeServer, make_client: MakeClient,
                                        relays: MakeRelay, mode: str) -> None:
    """A half-open link (bytes vanish) is detected by irc PING / SSE silence, then resumed."""
    app = await make_server(flood_burst=0, sse_heartbeat=0.1)
    relay = await relays(app.irc_port if mode == "irc" else app.http_port)
    ports = {"irc_port": relay.port} if mode == "irc" else {"http_port": relay.port}
    client, got = await make_client(app, mode, "alice", ping_interval=0.2, ping_timeout=0.3,
                                    stream_timeout=0.5, **ports)
    peer, _ = await make_client(app, "irc", "bob")
    relay.blackhole()
    await peer.send("lobby", "into the void")
    await wait_until(lambda: "into the void" in got.texts(), what="message after resume")
    assert got.texts() == ["into the void"]
    await wait_until(lambda: client.state == "connected", what="connected state")
    assert client.counters.reconnects >= 1 and "reconnecting" in got.states
    assert any("ping timeout" in n or "silent" in n for n in got.notices), got.notices


@pytest.mark.parametrize(("settings", "reason"), [
    ({"idle_timeout": 0.3}, "Idle timeout"),
    ({"flood_burst": 8, "flood_rate": 0.5, "recvq": 600}, "Excess Flood"),
])
async def test_a_close_the_server_chose_is_final(make_server: MakeServer,
                                                 make_client: MakeClient,
                                                 settings: dict[str, float], reason: str) -> None:
    """Reaped on purpose (idle, flood): the client says why and does not come back."""
    app = await make_server(**settings)
    client, got = await make_client(app, "irc", "alice")
    if reason == "Excess Flood":
        await client.send("lobby", "x" * 3000)  # 8 lines at once, past the budget
    await wait_until(lambda: client.state == "closed", what="closed by the server")
    await asyncio.sleep(0.3)  # time enough for a reconnect, if one were coming
    assert client.ended == reason
    assert client.counters.connections_opened == 1 and client.counters.reconnects == 0
    assert "reconnecting" not in got.states and got.states[-1] == "closed"


async def test_http_sign_in_refused_after_expiry_is_final(
        make_server: MakeServer, make_client: MakeClient, relays: MakeRelay) -> None:
    """An expired HTTP session signs in again; if that is refused (nick taken meanwhile) the
    client stops and says why instead of retrying forever."""
    app = await make_server(session_timeout=0.2)
    relay = await relays(app.http_port)
    _observer, seen = await make_client(app, "irc", "bob")
    client, got = await make_client(app, "poll", "alice", http_port=relay.port)
    relay.refusing = True
    relay.drop()
    await wait_until(lambda: ("alice", "Session timeout") in [
        (e.nick, e.text) for e in seen.events if e.kind == "quit"], what="session expired")
    thief, _ = await make_client(app, "irc", "alice")
    relay.refusing = False
    await wait_until(lambda: client.state == "closed", what="client stopped")
    assert client.ended is not None and "Nickname is already in use" in client.ended
    assert thief.state == "connected"


class _SilentStream:
    """An event stream that never ends; its last byte came ``ago`` seconds back."""

    def __init__(self, ago: float) -> None:
        self.closed = False
        self.last_rx = asyncio.get_running_loop().time() - ago
        self.aborted = asyncio.Event()

    async def finished(self) -> None:
        await asyncio.Event().wait()

    def abort(self) -> None:
        self.closed = True
        self.aborted.set()


async def test_a_silent_stream_is_given_up_one_timeout_after_its_last_byte() -> None:
    """stream_timeout 1 s, last byte 0.9 s ago: the stream is given up before a sentinel
    0.5 s on (the timeout counts from the last byte, not from when the watch began)."""
    transport = make_transport("sse", host="127.0.0.1", irc_port=1, http_port=1,
                               nick="alice", on_event=lambda _event: None,
                               stream_timeout=1.0)
    stream = _SilentStream(ago=0.9)
    order: list[str] = []

    async def sentinel() -> None:
        await asyncio.sleep(0.5)
        order.append("sentinel")

    async def watch() -> None:
        with pytest.raises(ConnectionError, match="silent"):
            await transport._watch_stream(stream)  # type: ignore[attr-defined]
        order.append("given up")

    async with asyncio.timeout(3.0):
        await asyncio.gather(sentinel(), watch())
    assert order == ["given up", "sentinel"]
