"""Running a room across transports over loopback: HTTP operators, kicked and killed
pollers, typing notices between HTTP and IRC."""

from __future__ import annotations

import asyncio

import orjson

from chat.app import ChatServer
from chat.core.passwords import hash_password
from tests.conftest import MakeServer

from .util import Conn, Irc, build, call, new_session

OPER = "admin:" + hash_password("hunter2", n=2)


async def _cursor(port: int, token: str, room: str) -> int:
    next_id: int = (await call(port, "GET", f"/api/rooms/{room}/messages",
                               token=token)).json()["next"]
    return next_id


async def test_kicked_pollers_held_requests_are_answered(make_server: MakeServer) -> None:
    """An IRC op kicks an HTTP user: the held long poll answers with the kick, the SSE
    stream sends it and ends, and the user is no longer in the room."""
    app = await make_server(presence_interval=0)
    port = app.http_port
    op = await Irc.connect(app.irc_port, "op")
    await op.send("JOIN #r")
    await op.expect(" 366 ")
    victim = await new_session(port, "victim", "r")
    since = await _cursor(port, victim, "r")
    poller, streamer = await Conn.open(port), await Conn.open(port)
    await poller.send(build("GET", f"/api/rooms/r/messages?since={since}&wait=10",
                            token=victim))
    await streamer.send(build("GET", "/api/rooms/r/events", token=victim))
    await streamer.stream_until(b"retry:")
    await asyncio.sleep(0.05)
    await op.send("KICK #r victim :bye")
    await op.expect("KICK #r victim :bye")
    [event] = (await poller.response()).json()["events"]
    assert (event["kind"], event["nick"], event["target"], event["text"]) == \
        ("kick", "op", "victim", "bye")
    body = await streamer.stream_until(b"event: kick")
    assert b'"target":"victim"' in body
    ended = await streamer.response()  # the stream ends after the kick
    assert ended.complete
    resp = await call(port, "GET", "/api/rooms/r/messages", token=victim)
    assert resp.status == 403


async def boss_and_ircer(make_server: MakeServer) -> tuple[ChatServer, int, str, Irc]:
    """A server; "boss" (HTTP) made room r and operates it; "ircer" joined #r over IRC."""
    app = await make_server(presence_interval=0)
    boss = await new_session(app.http_port, "boss", "r")
    irc = await Irc.connect(app.irc_port, "ircer")
    await irc.send("JOIN #r")
    await irc.expect(" 366 ")
    return app, app.http_port, boss, irc


async def test_http_operator_runs_an_irc_channel(make_server: MakeServer) -> None:
    """An HTTP room operator's MODE, INVITE and KICK reach IRC members as IRC lines."""
    app, port, boss, irc = await boss_and_ircer(make_server)
    resp = await call(port, "POST", "/api/rooms/r/mode", token=boss,
                      body={"modes": "+vm", "args": ["ircer"]})
    assert resp.status == 200
    assert await irc.expect("MODE") == ":boss!boss@http MODE #r +vm ircer"
    guest = await Irc.connect(app.irc_port, "guest")
    resp = await call(port, "POST", "/api/rooms/r/invite", token=boss, body={"nick": "guest"})
    assert resp.status == 200
    assert await guest.expect("INVITE") == ":boss!boss@http INVITE guest #r"
    resp = await call(port, "POST", "/api/rooms/r/kick", token=boss,
                      body={"nick": "ircer", "reason": "test"})
    assert resp.status == 200
    assert await irc.expect("KICK") == ":boss!boss@http KICK #r ircer :test"


async def test_an_unknown_letter_does_not_stop_the_others(make_server: MakeServer) -> None:
    """As IRC MODE: "+v-o+x" applies +v and lists the unknown letter as refused, naming it;
    a request of unknown letters only is 400 unknown_mode."""
    app, port, boss, irc = await boss_and_ircer(make_server)
    resp = await call(port, "POST", "/api/rooms/r/mode", token=boss,
                      body={"modes": "+v+x", "args": ["ircer"]})
    body = resp.json()
    assert (resp.status, body["modes"], body["args"]) == (200, "+v", ["ircer"])
    assert body["refused"] == [{"error": "unknown_mode", "subject": "x",
                                "message": "'x' is unknown mode char to me"}]
    assert await irc.expect("MODE") == ":boss!boss@http MODE #r +v ircer"
    resp = await call(port, "POST", "/api/rooms/r/mode", token=boss, body={"modes": "+xy"})
    assert (resp.status, resp.json()["error"]) == (400, "unknown_mode")
    assert resp.json()["message"] == "'x' is unknown mode char to me"


async def test_typing_between_http_and_irc(make_server: MakeServer) -> None:
    """HTTP typing reaches an IRC message-tags client as TAGMSG and a held long poll;
    an IRC TAGMSG reaches an SSE stream as a tagmsg event with its tags."""
    app = await make_server(presence_interval=0)
    port = app.http_port
    alice = await new_session(port, "alice", "r")
    watcher = await new_session(port, "watcher", "r")
    irc = await Irc.connect(app.irc_port, "ircer", caps="message-tags")
    await irc.send("JOIN #r")
    await irc.expect(" 366 ")
    since = await _cursor(port, watcher, "r")
    poller = await Conn.open(port)
    await poller.send(build("GET", f"/api/rooms/r/messages?since={since}&wait=10",
                            token=watcher))
    await asyncio.sleep(0.05)
    typed = await call(port, "POST", "/api/rooms/r/typing", token=alice,
                       body={"state": "active"})
    assert typed.status == 200
    line = await irc.expect("TAGMSG #r")
    assert line.startswith("@+typing=active;msgid=") and ":alice!alice@http TAGMSG" in line
    held = (await poller.response()).json()
    assert [(e["kind"], e["tags"]) for e in held["events"]] == [
        ("tagmsg", {"+typing": "active"})]
    assert held["next"] == typed.json()["id"]
    stream = await Conn.open(port)
    await stream.send(build("GET", "/api/rooms/r/events", token=watcher))
    await stream.stream_until(b"retry:")
    await irc.send("@+typing=paused TAGMSG #r")
    body = await stream.stream_until(b"event: tagmsg")
    data = body.split(b"event: tagmsg\ndata: ")[1].split(b"\n")[0]
    assert orjson.loads(data)["tags"] == {"+typing": "paused"}


async def test_killed_poller_is_told_and_logged_out(make_server: MakeServer) -> None:
    """KILL of an HTTP user: its held inbox poll gets the kill, then its token is dead."""
    app = await make_server(oper=(OPER,))
    port = app.http_port
    victim = await new_session(port, "victim")
    oper = await Irc.connect(app.irc_port, "oper")
    await oper.send("OPER admin hunter2")
    await oper.expect(" 381 ")
    poller = await Conn.open(port)
    await poller.send(build("GET", "/api/me/messages?since=0&wait=10", token=victim))
    await asyncio.sleep(0.05)
    await oper.send("KILL victim :spam")
    [event] = (await poller.response()).json()["events"]
    assert (event["kind"], event["nick"], event["text"]) == ("kill", "oper", "spam")
    assert (await call(port, "GET", "/api/sessions/me", token=victim)).status == 401


async def test_a_secret_room_is_no_room_to_outsiders(make_server: MakeServer) -> None:
    """+s: reading or posting from outside answers as for a room that does not exist."""
    app = await make_server()
    port = app.http_port
    irc = await Irc.connect(app.irc_port, "hider")
    await irc.send("JOIN #hid", "MODE #hid +s")
    await irc.expect("MODE #hid +s")
    outsider = await new_session(port, "outsider")
    answers = [await call(port, "GET", "/api/rooms/hid/messages", token=outsider),
               await call(port, "POST", "/api/rooms/hid/messages", token=outsider,
                          body={"text": "hello?"}),
               await call(port, "GET", "/api/rooms/hid/events", token=outsider),
               await call(port, "GET", "/api/rooms/nowhere/messages", token=outsider)]
    assert [(r.status, r.json()["error"]) for r in answers] == [(404, "no_such_room")] * 4
