"""Each transport mode against a real in-process server: send, receive, count, resume."""

from __future__ import annotations

import pytest

from chat.client.model import TransportError
from chat.client.transports import MODES, make_transport

from ..conftest import MakeServer
from .conftest import MakeClient, wait_until


@pytest.mark.parametrize("mode", MODES)
async def test_mode_sends_and_receives(make_server: MakeServer, make_client: MakeClient,
                                       mode: str) -> None:
    """A client in each mode receives an IRC peer's messages in order and is heard back."""
    app = await make_server()
    client, got = await make_client(app, mode, "alice")
    peer, peer_got = await make_client(app, "irc", "bob")
    for i in range(5):
        await peer.send("lobby", f"from bob {i}")
    await client.send("lobby", "from alice")
    await wait_until(lambda: len(got.texts()) >= 6 and "from alice" in peer_got.texts(),
                     what="messages both ways")
    assert [t for t in got.texts() if t.startswith("from bob")] == [
        f"from bob {i}" for i in range(5)]
    assert peer_got.texts().count("from alice") == 1
    ids = [e.id for e in got.events if e.room == "lobby"]
    assert ids == sorted(set(ids))  # strictly increasing: nothing repeated
    c = client.counters
    assert c.requests > 0 and c.bytes_in > 0 and c.bytes_out > 0
    assert c.connections_opened >= 1 and c.events == len(got.events)


@pytest.mark.parametrize("mode", MODES)
async def test_private_messages(make_server: MakeServer, make_client: MakeClient,
                                mode: str) -> None:
    """/msg works both ways in every mode; the sender sees its own message once."""
    app = await make_server()
    client, got = await make_client(app, mode, "alice")
    peer, peer_got = await make_client(app, "poll", "bob")
    await peer.msg("alice", "psst alice")
    await client.msg("bob", "psst bob")
    await wait_until(lambda: ("bob", "alice", "psst alice") in got.private()
                     and ("alice", "bob", "psst bob") in peer_got.private(),
                     what="private messages")
    assert got.private().count(("alice", "bob", "psst bob")) == 1
    with pytest.raises(TransportError):
        await client.msg("nobody", "hello?")


async def test_poll_counts_empty_polls_and_keeps_one_connection(
        make_server: MakeServer, make_client: MakeClient) -> None:
    """poll reuses one keep-alive connection; poll-close opens one per request."""
    app = await make_server()
    poll, _ = await make_client(app, "poll", "alice", inbox=False)
    close, _ = await make_client(app, "poll-close", "carol", inbox=False)
    await wait_until(lambda: poll.counters.empty_polls >= 5
                     and close.counters.empty_polls >= 5, what="empty polls")
    assert poll.counters.connections_opened == 1
    assert close.counters.connections_opened == close.counters.requests


@pytest.mark.parametrize("mode", ["irc", "poll"])
async def test_refused_nick_and_unreachable_server(make_server: MakeServer, mode: str) -> None:
    """A taken nick or a closed port makes start() raise a one-line TransportError."""
    app = await make_server()
    holder = make_transport("irc", host="127.0.0.1", irc_port=app.irc_port,
                            http_port=app.http_port, nick="taken", on_event=lambda e: None)
    await holder.start()
    try:
        clash = make_transport(mode, host="127.0.0.1", irc_port=app.irc_port,
                               http_port=app.http_port, nick="taken", on_event=lambda e: None)
        with pytest.raises(TransportError, match="taken"):
            await clash.start()
        assert clash.state == "closed"
    finally:
        await holder.close()
    await app.shutdown()
    gone = make_transport(mode, host="127.0.0.1", irc_port=app.irc_port,
                          http_port=app.http_port, nick="late", on_event=lambda e: None)
    with pytest.raises(TransportError, match="cannot reach") as info:
        await gone.start()
    assert "\n" not in str(info.value)


async def test_bad_room_and_commands_outside_room(make_server: MakeServer,
                                                  make_client: MakeClient) -> None:
    """Illegal room names and sends to a room not joined are refused with a clear error."""
    app = await make_server()
    client, _ = await make_client(app, "irc", "alice")
    with pytest.raises(TransportError, match="bad room name"):
        await client.join("no spaces")
    with pytest.raises(TransportError, match="join"):
        await client.send("elsewhere", "hello")


async def test_irc_answers_server_pings_and_measures_rtt(make_server: MakeServer,
                                                         make_client: MakeClient) -> None:
    """irc mode answers the server's PINGs (never reaped) and records its own PING's RTT."""
    app = await make_server(ping_interval=0.1, ping_timeout=0.3)
    client, got = await make_client(app, "irc", "alice", ping_interval=60.0)
    await wait_until(lambda: app.stats.irc.pings_sent >= 3, what="server PINGs")
    assert client.state == "connected" and client.counters.reconnects == 0
    assert client.counters.heartbeat_rtt_ms is not None
    assert "reconnecting" not in got.states


async def test_nick_change(make_server: MakeServer, make_client: MakeClient) -> None:
    """set_nick renames on IRC (and re-signs-in on HTTP); a taken nick is refused."""
    app = await make_server()
    irc, _ = await make_client(app, "irc", "alice")
    http, _ = await make_client(app, "longpoll", "bob")
    await irc.set_nick("alice2")
    await http.set_nick("bob2")
    assert (irc.nick, http.nick) == ("alice2", "bob2")
    with pytest.raises(TransportError):
        await irc.set_nick("bob2")
    with pytest.raises(TransportError):
        await http.set_nick("alice2")
    members = {m.nick for m in await http.who("lobby")}
    assert members == {"alice2", "bob2"}
