"""Being run by operators, in every mode: kicked, killed, keyed rooms, their events shown."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from chat.client.ircline import chat_event, parse_line
from chat.client.model import ChatEvent, TransportError, event_from_json, key_change
from chat.client.render import event_fragments, plain
from chat.client.transports import make_transport
from chat.core.passwords import hash_password
from tests.http.util import Irc

from ..conftest import MakeServer
from .conftest import Collector, MakeClient, wait_until
from .test_session import new_session

ALL_MODES = ("irc", "ws", "sse", "longpoll", "poll", "poll-close")
OPER = "admin:" + hash_password("hunter2", n=2)


async def _operator(port: int, *rooms: str) -> Irc:
    """An IRC operator who made ``rooms`` (so is their channel operator)."""
    op = await Irc.connect(port, "carol")
    await op.send("OPER admin hunter2")
    await op.expect(" 381 ")
    for room in rooms:
        await op.send(f"JOIN #{room}")
        await op.expect(" 366 ", f"#{room}")
    return op


def _left(got: Collector) -> list[str]:
    return [n for n in got.notices if n.startswith(("kicked from", "removed from"))]


@pytest.mark.parametrize("mode", ALL_MODES)
async def test_kicked_user_is_out_of_the_room_and_may_join_again(
        make_server: MakeServer, make_client: MakeClient, mode: str) -> None:
    """A kick takes the room away (no rejoin by reconnect logic, no retry loop); the other
    rooms go on; a later join really joins."""
    app = await make_server(oper=(OPER,), flood_burst=0)
    op = await _operator(app.irc_port, "lobby", "other")
    client, got = await make_client(app, mode, "dave")
    await client.join("other")
    await op.expect("JOIN", "#other", "dave")
    await op.send("KICK #lobby dave :go away")
    await wait_until(lambda: bool(_left(got)), what="the kick noticed")
    [why] = _left(got)
    if mode not in ("poll", "poll-close"):  # a short poll may not see its own kick (403)
        assert why == "kicked from #lobby by carol (go away)"
        kick = [e for e in got.events if e.kind == "kick"]
        assert [(e.room, e.nick, e.args, e.text) for e in kick] == \
            [("lobby", "carol", ("dave",), "go away")]
    assert client.rooms == ["other"]
    await asyncio.sleep(0.3)  # room for a rejoin or a retry loop, if any
    assert client.state == "connected"
    assert not [n for n in got.notices if "disconnected" in n or "retrying" in n]
    lobby = app.engine.find_room("#lobby")
    assert lobby is not None and "dave" not in {m.nick for m in lobby.members.values()}
    await op.send("PRIVMSG #other :still here?")
    await wait_until(lambda: "still here?" in got.texts("other"), what="the other room")
    await client.join("lobby")
    await op.send("PRIVMSG #lobby :welcome back")
    await wait_until(lambda: "welcome back" in got.texts(), what="the room joined again")
    assert client.rooms == ["other", "lobby"]


async def test_kicked_session_talks_in_another_room(make_server: MakeServer) -> None:
    """The front end is told: the current room becomes another one, and /join works."""
    app = await make_server(oper=(OPER,), flood_burst=0)
    op = await _operator(app.irc_port, "lobby", "other")
    session, out = new_session(app, "ws", "dave")
    await session.start("other")
    await session.handle("/join lobby")
    assert session.room == "lobby"
    await op.send("KICK #lobby dave :go away")
    await wait_until(lambda: session.room == "other", what="the current room changed")
    assert "kicked from #lobby by carol (go away); now talking in #other; /join lobby to " \
        "go back" in out.infos
    await session.handle("/join lobby")
    await session.handle("back again")
    await op.expect("PRIVMSG #lobby :back again")
    await session.handle("/me waves")
    await op.expect("PRIVMSG #lobby :\x01ACTION waves\x01")
    assert out.errors == []
    await session.close()


@pytest.mark.parametrize("mode", ALL_MODES)
async def test_kill_is_final_in_every_mode(make_server: MakeServer, make_client: MakeClient,
                                           mode: str) -> None:
    """An operator's KILL closes the client for good: it says why and does not sign in
    again (the nick stays free)."""
    app = await make_server(oper=(OPER,), flood_burst=0)
    op = await _operator(app.irc_port, "lobby")
    client, got = await make_client(app, mode, "dave")
    await op.send("KILL dave :bye")
    await wait_until(lambda: client.state == "closed", what="closed")
    assert client.ended is not None and "Killed (carol (bye))" in client.ended
    assert not [e for e in got.events if e.kind == "kill"]  # said once, as the reason
    await asyncio.sleep(0.3)  # room for a sign-in again, if any
    assert client.state == "closed"
    await wait_until(lambda: app.engine.find_user("dave") is None, what="the nick free")


async def test_killed_session_does_not_reconnect(make_server: MakeServer) -> None:
    """The front end says the server closed the connection and stays closed."""
    app = await make_server(oper=(OPER,), flood_burst=0)
    op = await _operator(app.irc_port)
    session, out = new_session(app, "sse", "dave")
    await session.start("lobby")
    for _ in range(40):  # until the stream of private messages (the kill's) is open
        await op.send("PRIVMSG dave :hi")
        with contextlib.suppress(AssertionError):
            await wait_until(lambda: bool(out.events), timeout=0.2)
            break
    await op.send("KILL dave :bye")
    await wait_until(lambda: session.transport.state == "closed", what="closed")
    assert out.errors == ["the server closed the connection: Killed (carol (bye)); not "
                          "reconnecting (/reconnect to try again)"]
    assert {e.text for e in out.events if e.private} == {"hi"}  # the kill is none
    await session.close()


@pytest.mark.parametrize("mode", ALL_MODES)
async def test_join_with_key_and_switch_carries_it(make_server: MakeServer, mode: str) -> None:
    """/join room key joins a +k room; /mode switches join it again with the key, the one
    joined with and the one learnt from a MODE +k."""
    app = await make_server(oper=(OPER,), flood_burst=0)
    op = await _operator(app.irc_port, "keyed", "lobby")
    await op.send("MODE #keyed +k sekrit")
    session, out = new_session(app, mode, "dave")
    await session.start("lobby")
    await session.handle("/join keyed wrong")
    assert out.errors and "+k" in out.errors[0]
    out.errors.clear()
    await session.handle("/join keyed sekrit")
    await op.expect("JOIN", "#keyed", "dave")
    await op.send("MODE #lobby +k other-key")
    await op.expect("MODE #lobby +k other-key")
    await wait_until(lambda: session.transport.keys.get("lobby") == "other-key",
                     what="the key learnt")
    for target in (("longpoll", "irc") if mode == "irc" else ("irc", "longpoll")):
        await session.handle(f"/mode {target}")
        assert session.mode == target, out.errors
        assert session.transport.rooms == ["lobby", "keyed"]
    assert out.errors == []
    await session.handle("still here")
    await op.expect("PRIVMSG #keyed :still here")
    await session.close()


@pytest.mark.parametrize("mode", ["sse", "longpoll"])
async def test_failed_switch_ends_the_half_made_session(make_server: MakeServer,
                                                        mode: str) -> None:
    """A room refusing the new mode (a ban on HTTP users) ends the new session, so the
    switch goes back to the old mode under the same nick."""
    app = await make_server(oper=(OPER,), flood_burst=0)
    op = await _operator(app.irc_port, "lobby")
    session, out = new_session(app, "irc", "dave")
    await session.start("lobby")
    await op.expect("JOIN", "#lobby", "dave")
    await op.send("MODE #lobby +b *!*@http")
    await op.expect("MODE #lobby +b")
    await session.handle(f"/mode {mode}")
    assert session.mode == "irc"
    assert session.transport.state == "connected"
    assert len(out.errors) == 1 and out.errors[0].endswith("going back to irc"), out.errors
    assert [u.transport for u in app.engine.users()].count("http") == 0
    await session.handle("back in irc")
    await op.expect("PRIVMSG #lobby :back in irc")
    await session.close()


@pytest.mark.parametrize("mode", ALL_MODES)
async def test_operator_events_are_reported_alike(make_server: MakeServer,
                                                  make_client: MakeClient, mode: str) -> None:
    """MODE (with its arguments), KICK (with its target), INVITE and /me come as the same
    events in every mode."""
    app = await make_server(oper=(OPER,), flood_burst=0)
    op = await _operator(app.irc_port, "lobby", "other")
    client, got = await make_client(app, mode, "dave")
    _bob, _ = await make_client(app, "irc", "bob")
    await op.send("MODE #lobby +ok bob sekrit", "KICK #lobby bob :go away",
                  "INVITE dave #other", "PRIVMSG #lobby :\x01ACTION waves\x01")
    kinds = ("mode", "kick", "invite", "message")
    await wait_until(lambda: len([e for e in got.events if e.kind in kinds]) == 4,
                     what="the four events")
    seen = sorted((e.kind, e.room, e.nick, e.text, e.args, e.to) for e in got.events
                  if e.kind in kinds)  # (HTTP modes fetch the invite on a feed of its own)
    assert seen == [("invite", "other", "carol", "", (), "dave"),
                    ("kick", "lobby", "carol", "go away", ("bob",), ""),
                    ("message", "lobby", "carol", "\x01ACTION waves\x01", (), ""),
                    ("mode", "lobby", "carol", "+ok", ("bob", "sekrit"), "")]
    assert "other" not in client.cursors.last  # an invite is no event of that room


def test_event_objects_read_kick_mode_and_invite() -> None:
    """The API's kick target, mode args and invite room reach the ChatEvent and its JSON."""
    kick = event_from_json("lobby", {"id": 5, "ts": 1.0, "kind": "kick", "nick": "carol",
                                     "text": "go away", "target": "uws"}, 1.0)
    assert kick.args == ("uws",) and kick.to_json()["target"] == "uws"
    mode = event_from_json("lobby", {"id": 6, "ts": 1.0, "kind": "mode", "nick": "carol",
                                     "text": "+k", "args": ["sekrit"]}, 1.0)
    assert mode.args == ("sekrit",) and mode.to_json()["args"] == ["sekrit"]
    invite = event_from_json("", {"id": 7, "ts": 1.0, "kind": "invite", "nick": "carol",
                                  "room": "other", "to": "uws"}, 1.0, to="uws")
    assert (invite.room, invite.to) == ("other", "uws")


async def test_ws_round_trip_is_measured_at_every_heartbeat(make_server: MakeServer,
                                                            make_client: MakeClient) -> None:
    """ws mode times its Pings with perf_counter (uvloop's clock ticks in ms), each one."""
    app = await make_server()
    client, _ = await make_client(app, "ws", "dave", ping_interval=0.1)
    rtt = client.counters.heartbeat_rtt_ms
    assert rtt is not None and rtt > 0
    client.counters.heartbeat_rtt_ms = None
    await wait_until(lambda: client.counters.heartbeat_rtt_ms is not None,
                     what="the next heartbeat timed")
    assert client.counters.heartbeat_rtt_ms > 0


@pytest.mark.parametrize(("password", "says"), [
    (None, "server refused nopw: this server wants a password: use --password"),
    ("wrong", "server refused nopw: Password incorrect")])
async def test_irc_password_refusal_is_told_in_words(make_server: MakeServer,
                                                     password: str | None, says: str) -> None:
    """A refused PASS shows the server's text (and a hint without --password), not 464."""
    app = await make_server(password="secret")
    got = Collector()
    client = make_transport("irc", host="127.0.0.1", irc_port=app.irc_port,
                            http_port=app.http_port, nick="nopw", password=password,
                            on_event=got.events.append, timeout=3.0)
    with pytest.raises(TransportError) as info:
        await client.start()
    assert str(info.value) == says



def _shown(event: ChatEvent, me: str = "uws") -> str:
    """The line shown for ``event``, without its time and delay."""
    return plain(event_fragments(event, me)).split(" ", 1)[1].rsplit("  (", 1)[0]


def test_operator_events_are_shown_in_words() -> None:
    """Kick with its target, mode with its arguments, an invite, /me: readable lines."""
    def event(kind: str, text: str = "", args: tuple[str, ...] = (), room: str = "lobby",
              to: str = "", nick: str = "carol") -> ChatEvent:
        return ChatEvent(room, 1, 1.0, kind, nick, text, 1.0, to=to, args=args)

    assert _shown(event("kick", "go away", ("uws",))) == \
        "#lobby * carol kicked uws from #lobby (go away)"
    assert _shown(event("mode", "+o", ("bob",))) == "#lobby * carol sets mode +o bob"
    assert _shown(event("mode", "+k", ("sekrit",))) == "#lobby * carol sets mode +k sekrit"
    assert _shown(event("invite", room="room", to="uws")) == "* carol invites you to #room"
    assert _shown(event("message", "\x01ACTION waves\x01", nick="wendy")) == \
        "#lobby * wendy waves"
    assert _shown(event("message", "\x01ACTION waves at you\x01", room="", to="uws",
                        nick="wendy")) == "* wendy waves at you"


def test_irc_lines_carry_the_api_events() -> None:
    """KICK, MODE and INVITE lines become the events the API gives; /me keeps its ACTION."""
    def event(text: str) -> ChatEvent | None:
        line = parse_line(text)
        assert line is not None
        return chat_event(line, None, 1.0)

    kick = event(":carol!c@h KICK #lobby uirc :go away")
    assert kick is not None and (kick.kind, kick.room, kick.args, kick.text) == \
        ("kick", "lobby", ("uirc",), "go away")
    mode = event(":carol!c@h MODE #lobby +ok bob sekrit")
    assert mode is not None and (mode.kind, mode.text, mode.args) == \
        ("mode", "+ok", ("bob", "sekrit"))
    invite = event(":carol!c@h INVITE uirc #room")
    assert invite is not None and (invite.kind, invite.room, invite.to) == \
        ("invite", "room", "uirc")
    action = event(":carol!c@h PRIVMSG #lobby :\x01ACTION waves at uirc\x01")
    assert action is not None and action.text == "\x01ACTION waves at uirc\x01"
    assert event(":uirc MODE uirc +i") is None  # a user mode is no room event


def test_key_change_reads_mode_parameters() -> None:
    """+k's key is found among the parameters of other modes; -k removes it."""
    assert key_change("+k", ["sekrit"]) == "sekrit"
    assert key_change("+olk", ["bob", "5", "sekrit"]) == "sekrit"
    assert key_change("+o-k", ["bob", "sekrit"]) == ""
    assert key_change("-l+v", ["bob"]) is None
