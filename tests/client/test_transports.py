"""Each transport mode against a real in-process server: send, receive, count, resume."""

from __future__ import annotations

import pytest

from chat.client.ircline import split_text, text_limit
from chat.client.model import TransportError
from chat.client.transports import MODES, make_transport

from ..conftest import MakeServer
from .conftest import MakeClient, MakeRelay, wait_until


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
    # The server PINGs again only once the last PING is answered, so three PINGs sent mean
    # two answered; a timeout well over a stalled loop's pause keeps a slow answer from
    # being taken for a dead client.
    app = await make_server(ping_interval=0.1, ping_timeout=1.0)
    client, got = await make_client(app, "irc", "alice", ping_interval=60.0)
    await wait_until(lambda: app.stats.irc.pings_sent >= 3, what="server PINGs")
    await wait_until(lambda: client.counters.heartbeat_rtt_ms is not None, what="an rtt")
    assert client.state == "connected" and client.counters.reconnects == 0
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


LONG_LINE = " ".join(f"word{i:03d}" for i in range(76)) + " " + "é" * 60  # 667 chars, 727 B


@pytest.mark.parametrize("mode", MODES)
async def test_long_line_is_split_alike_in_every_mode(make_server: MakeServer,
                                                      make_client: MakeClient,
                                                      mode: str) -> None:
    """A line too long for one IRC message goes out as the same pieces in every mode."""
    app = await make_server(flood_burst=0)
    client, got = await make_client(app, mode, "alice")
    peer, peer_got = await make_client(app, "irc", "bob")
    expected = split_text(LONG_LINE, text_limit("alice", "#lobby"))
    assert len(expected) == 2
    await client.send("lobby", LONG_LINE)
    await client.msg("bob", LONG_LINE)
    await wait_until(lambda: len(peer_got.texts()) == 2 and len(peer_got.private()) == 2,
                     what="both pieces, in the room and in private")
    assert peer_got.texts() == expected
    assert [text for _nick, _to, text in peer_got.private()] == split_text(
        LONG_LINE, text_limit("alice", "bob"))
    await wait_until(lambda: len(got.texts()) == 2, what="our own pieces back")
    assert got.texts() == expected


@pytest.mark.parametrize("mode", MODES)
async def test_nick_and_quit_are_shown_once(make_server: MakeServer, make_client: MakeClient,
                                            mode: str) -> None:
    """A peer sharing two rooms renames and quits: one NICK and one QUIT, naming no room."""
    app = await make_server(flood_burst=0)
    client, got = await make_client(app, mode, "alice")
    await client.join("side")
    peer, _ = await make_client(app, "irc", "bob")
    await peer.join("side")
    await peer.set_nick("bobby")
    await peer.close()
    await wait_until(lambda: any(e.kind == "quit" for e in got.events), what="the quit")
    for room in ("lobby", "side"):  # what came before has arrived once these are back
        await client.send(room, "after")
    await wait_until(lambda: "after" in got.texts() and "after" in got.texts("side"),
                     what="our messages back")
    presence = [(e.room, e.kind, e.nick, e.text) for e in got.events
                if e.kind in ("nick", "quit")]
    assert presence == [("", "nick", "bob", "bobby"), ("", "quit", "bobby", "Quit: Leaving")]


async def test_irc_quit_and_nick_move_the_cursors_of_shared_rooms(
        make_server: MakeServer, make_client: MakeClient) -> None:
    """A QUIT or NICK line names no room, yet moves the cursor of each room the user shared
    with us (and of no other: that room's history may not reach that far)."""
    app = await make_server(flood_burst=0)
    client, got = await make_client(app, "irc", "alice")
    await client.join("side")
    await client.join("quiet")
    peer, _ = await make_client(app, "irc", "bob")
    await peer.join("side")
    quiet = client.cursors.get("quiet")
    for step in ("nick", "quit"):
        await (peer.set_nick("bobby") if step == "nick" else peer.close())
        await wait_until(lambda: bool(got.events) and got.events[-1].kind in ("nick", "quit"),
                         what="the NICK or QUIT line")
        seen = got.events[-1].id
        assert seen > 0 and got.events[-1].room == ""
        assert (client.cursors.get("lobby") or 0) >= seen
        assert (client.cursors.get("side") or 0) >= seen
        assert client.cursors.get("quiet") == quiet
        del got.events[:]


async def test_irc_rtt_follows_the_server_pings(make_server: MakeServer,
                                                make_client: MakeClient) -> None:
    """The round trip shown is measured again at every heartbeat, not only at connect."""
    app = await make_server(ping_interval=0.1, ping_timeout=1.0)
    client, _ = await make_client(app, "irc", "alice", ping_interval=60.0)
    await wait_until(lambda: client.counters.heartbeat_rtt_ms is not None, what="first rtt")
    for _ in range(2):
        client.counters.heartbeat_rtt_ms = None
        await wait_until(lambda: client.counters.heartbeat_rtt_ms is not None,
                         what="a new rtt after a server PING")


@pytest.mark.parametrize("mode", ["sse", "longpoll", "poll", "poll-close"])
async def test_history_gap_is_a_notice(make_server: MakeServer, make_client: MakeClient,
                                       relays: MakeRelay, mode: str) -> None:
    """``gap: true`` (events already gone from the bounded history) is told, not ignored."""
    app = await make_server(flood_burst=0, history=3)
    relay = await relays(app.http_port)
    client, got = await make_client(app, mode, "alice", http_port=relay.port, inbox=False)
    peer, _ = await make_client(app, "irc", "bob")
    await peer.send("lobby", "seen")
    await wait_until(lambda: "seen" in got.texts(), what="first message")
    relay.refusing = True
    relay.drop()
    await wait_until(lambda: client.state == "reconnecting", what="cut off")
    for i in range(6):
        await peer.send("lobby", f"missed {i}")
    relay.refusing = False
    await wait_until(lambda: "missed 5" in got.texts(), what="the messages still kept")
    assert got.texts()[-3:] == ["missed 3", "missed 4", "missed 5"]
    assert [n for n in got.notices if "history" in n] == [
        "#lobby: some events had already left the server's history"]


async def test_irc_topic_and_operators(make_server: MakeServer, make_client: MakeClient) -> None:
    """irc mode reads and sets topics (TOPIC), is told when +t refuses, and /who marks ops."""
    app = await make_server(flood_burst=0)
    op, op_got = await make_client(app, "irc", "alice")      # made the room: operator
    other, _ = await make_client(app, "irc", "bob")
    assert await op.topic("lobby") == ""
    assert await op.topic("lobby", "welcome all") == "welcome all"
    await wait_until(lambda: op_got.texts(kind="topic") == ["welcome all"], what="topic event")
    assert await other.topic("lobby") == "welcome all"
    with pytest.raises(TransportError, match="operator"):
        await other.topic("lobby", "mine now")
    members = {m.nick: m.op for m in await other.who("lobby")}
    assert members == {"alice": True, "bob": False}
