"""``chat connect --mode ws``: the shared transport tests, run for the WebSocket mode too.

The generic tests live in test_transports.py and test_reconnect.py (parametrized over the
five modes the compare lab knows); they are called here with ``"ws"``.
"""

from __future__ import annotations

from ..conftest import MakeServer
from . import test_reconnect as reconnect
from . import test_transports as transports
from .conftest import MakeClient, MakeRelay, wait_until


async def test_ws_sends_and_receives(make_server: MakeServer, make_client: MakeClient) -> None:
    """ws mode receives an IRC peer's messages in order, once each, and is heard back."""
    await transports.test_mode_sends_and_receives(make_server, make_client, "ws")


async def test_ws_private_messages(make_server: MakeServer, make_client: MakeClient) -> None:
    """/msg works both ways in ws mode; the sender sees its own message once."""
    await transports.test_private_messages(make_server, make_client, "ws")


async def test_ws_reconnects_after_drop(make_server: MakeServer, make_client: MakeClient,
                                        relays: MakeRelay) -> None:
    """Cut the WebSocket and refuse for a while: every message arrives, once."""
    await reconnect.test_reconnect_after_server_drops_connection(
        make_server, make_client, relays, "ws")


async def test_ws_survives_restart(make_server: MakeServer, make_client: MakeClient) -> None:
    """A restart (ids start over, the session is gone) is noticed; nothing dropped or doubled."""
    await reconnect.test_reconnect_after_server_restart(make_server, make_client, "ws")


async def test_ws_notices_a_silent_server(make_server: MakeServer, make_client: MakeClient,
                                          relays: MakeRelay) -> None:
    """A half-open link fails the library's keepalive; the client resumes on a new one."""
    app = await make_server(flood_burst=0)
    relay = await relays(app.http_port)
    client, got = await make_client(app, "ws", "alice", ping_interval=0.2, ping_timeout=0.3,
                                    http_port=relay.port)
    peer, _ = await make_client(app, "irc", "bob")
    relay.blackhole()
    await peer.send("lobby", "into the void")
    await wait_until(lambda: "into the void" in got.texts(), what="message after resume")
    assert got.texts() == ["into the void"]
    await wait_until(lambda: client.state == "connected", what="connected state")
    assert client.counters.reconnects >= 1
    assert any("ping timeout" in n for n in got.notices), got.notices


async def test_ws_nick_and_who(make_server: MakeServer, make_client: MakeClient) -> None:
    """set_nick renames the session's user; who lists members with their transport."""
    app = await make_server()
    client, _ = await make_client(app, "ws", "alice")
    await make_client(app, "irc", "bob")
    await client.set_nick("alice2")
    assert client.nick == "alice2"
    members = {m.nick: m.info.split(",")[0] for m in await client.who("lobby")}
    assert members == {"alice2": "ws", "bob": "irc"}
    assert client.counters.requests >= 3 and client.counters.connections_opened == 2
