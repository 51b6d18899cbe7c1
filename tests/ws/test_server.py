"""The WebSocket adapter over real loopback sockets: handshake, chat, heartbeats, limits."""

from __future__ import annotations

import asyncio
import itertools

import orjson
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.frames import Opcode

from chat.app import ChatServer

from ..conftest import MakeServer, eventually
from ..http.util import Irc, call, new_session
from .util import RawWs, next_event, open_ws, request


async def irc_in(app: ChatServer, nick: str, room: str) -> Irc:
    irc = await Irc.connect(app.irc_port, nick)
    await irc.send(f"JOIN #{room}")
    await irc.expect(" 366 ")
    return irc


async def test_handshake_refusals(make_server: MakeServer) -> None:
    """No token, a bad token, no upgrade, a bad version or key: refused with JSON errors."""
    app = await make_server()
    port = app.http_port
    for token in (None, "nope"):
        with pytest.raises(InvalidStatus) as info:
            await open_ws(port, token or "")
        response = info.value.response
        assert response.status_code == 401
        assert orjson.loads(response.body)["error"] == "unauthorized"
    token = await new_session(port, "alice")
    plain = await call(port, "GET", f"/api/ws?token={token}")
    assert plain.status == 426 and plain.json()["error"] == "upgrade_required"
    assert plain.headers["upgrade"] == "websocket"
    assert (await call(port, "POST", f"/api/ws?token={token}")).status == 405
    old = await RawWs.open(port, f"/api/ws?token={token}", version="8")
    assert old.status == 400 and b"sec-websocket-version: 13" in old.head
    assert (await old.body())["error"] == "bad_handshake"
    keyless = await RawWs.open(port, f"/api/ws?token={token}", key=None)
    assert keyless.status == 400 and (await keyless.body())["error"] == "bad_handshake"
    assert app.stats.ws.connections_refused == 2 and app.stats.ws.connections_accepted == 0
    ws = await open_ws(port, token)  # the session is still good
    await ws.close()


async def test_chat_with_irc_and_quit_reason(make_server: MakeServer) -> None:
    """A WebSocket user and an IRC user chat with the same ids; a close is a QUIT on IRC."""
    app = await make_server()
    irc = await irc_in(app, "carol", "lobby")
    await irc.send("CAP REQ :message-tags")
    token = await new_session(app.http_port, "alice")
    ws = await open_ws(app.http_port, token)
    joined = (await request(ws, {"type": "join", "room": "lobby"}))[-1]
    assert joined["type"] == "joined" and joined["members"] == ["carol", "alice"]
    await irc.send("PRIVMSG #lobby :hello alice")
    event = await next_event(ws)
    assert event["nick"] == "carol" and event["text"] == "hello alice" and event["room"] == "lobby"
    assert event["id"] > joined["last_id"]
    said = await request(ws, {"type": "say", "room": "lobby", "text": "hi carol"})
    echo, ack = said[-2], said[-1]  # our own message comes back like everyone else's
    assert echo["kind"] == "message" and ack == {"type": "ack", "op": "say", "id": echo["id"],
                                                 "ts": echo["ts"], "ref": ack["ref"]}
    line = await irc.expect("PRIVMSG #lobby :hi carol")
    assert line.startswith(f"@msgid={echo['id']} :alice!alice@http ")  # the same id
    members = (await request(ws, {"type": "members", "room": "lobby"}))[-1]["members"]
    assert {m["nick"]: m["transport"] for m in members} == {"carol": "irc", "alice": "ws"}
    assert app.stats.ws.writes >= 3  # pushed output is counted as for IRC
    await ws.close(1000, "see you")
    assert (await irc.expect("QUIT")).endswith(":Quit: see you")
    assert (await call(app.http_port, "GET", "/api/sessions/me", token=token)).status == 401


async def test_bad_frames_get_error_frames(make_server: MakeServer) -> None:
    """Malformed or refused frames get error frames with the API's codes; the socket stays."""
    app = await make_server()
    token = await new_session(app.http_port, "alice")
    ws = await open_ws(app.http_port, token)
    await ws.send("{nope")
    assert orjson.loads(await ws.recv())["error"] == "bad_json"
    cases = [({"type": "dance"}, "bad_request"),
             ({"type": "say", "room": "lobby", "text": "x"}, "no_such_room"),
             ({"type": "join", "room": "bad room"}, "room_invalid"),
             ({"type": "join", "room": "ok", "after": -1}, "bad_parameter"),
             ({"type": "msg", "to": "nobody", "text": "x"}, "no_such_nick"),
             ({"type": "say", "room": "ok", "text": "a\nb"}, "bad_request")]
    await request(ws, {"type": "join", "room": "ok"})
    cases.append(({"type": "say", "room": "ok", "text": "x" * 600}, "text_too_long"))
    for frame, code in cases:
        answer = (await request(ws, frame))[-1]
        assert (answer["type"], answer["error"]) == ("error", code), frame
    pong = (await request(ws, {"type": "ping"}))[-1]
    assert pong["type"] == "pong"
    await ws.close()


async def test_ping_timeout_reaps_a_silent_peer(make_server: MakeServer) -> None:
    """A peer that never answers Ping frames is closed with 1011 'Ping timeout'."""
    app = await make_server(ping_interval=0.1, ping_timeout=0.2, close_timeout=0.2)
    observer = await open_ws(app.http_port, await new_session(app.http_port, "carol"))
    await request(observer, {"type": "join", "room": "r"})
    token = await new_session(app.http_port, "ghost", "r")
    raw = await RawWs.open(app.http_port, f"/api/ws?token={token}")
    assert raw.status == 101
    frames = [await raw.frame() for _ in range(2)]  # hello, then a Ping
    assert [f.opcode for f in frames] == [Opcode.TEXT, Opcode.PING]
    assert await raw.close_frame() == (1011, "Ping timeout")
    quit_event = await next_event(observer, "quit")
    assert (quit_event["nick"], quit_event["text"]) == ("ghost", "Ping timeout")
    assert app.stats.ws.timeouts["ping"] == 1 and app.stats.ws.pings_sent >= 1
    await eventually(lambda: app.stats.ws.connections_open == 1)  # aborted; the observer stays


async def test_idle_timeout_reaps_a_peer_that_only_pongs(make_server: MakeServer) -> None:
    """Answering pings is not activity: no command for --idle-timeout closes with 1008."""
    app = await make_server(ping_interval=0.05, ping_timeout=1.0, idle_timeout=0.3)
    token = await new_session(app.http_port, "lazy")
    ws = await open_ws(app.http_port, token)
    with pytest.raises(ConnectionClosed):
        while True:
            await asyncio.wait_for(ws.recv(), 3.0)
    assert (ws.close_code, ws.close_reason) == (1008, "Idle timeout")
    assert app.stats.ws.timeouts["idle"] == 1 and app.stats.ws.pongs_received >= 1


async def test_sendq_cut_while_the_room_flows(make_server: MakeServer) -> None:
    """A WebSocket that stops reading is cut with 'SendQ exceeded'; the others keep up."""
    app = await make_server(sendq=64 * 1024, flood_burst=0, close_timeout=0.2)
    sender = await irc_in(app, "sender", "s")
    watcher = await open_ws(app.http_port, await new_session(app.http_port, "watcher"))
    await request(watcher, {"type": "join", "room": "s"})
    token = await new_session(app.http_port, "slow", "s")
    slow = await RawWs.open(app.http_port, f"/api/ws?token={token}", rcvbuf=4096)
    slow.send_json({"type": "resume", "room": "s"})
    text = "x" * 400
    sent = 0
    while app.stats.ws.reaps["sendq_exceeded"] == 0:
        assert sent < 40_000, "the slow reader was never cut"
        await sender.send(*(f"PRIVMSG #s :{sent + i} {text}" for i in range(200)))
        sent += 200
        for _ in range(200):  # the watcher keeps up
            await next_event(watcher)
    assert (await sender.expect("QUIT")).endswith(":SendQ exceeded")
    await sender.send("PRIVMSG #s :after the cut")
    while (await next_event(watcher))["text"] != "after the cut":
        pass
    await eventually(lambda: app.stats.ws.connections_open == 1)  # aborted, not lingering
    await watcher.close()


async def test_oversize_message_closes_with_1009(make_server: MakeServer) -> None:
    """A message over --ws-max-message fails the connection with 1009 (and a QUIT)."""
    app = await make_server(ws_max_message=1024)
    irc = await irc_in(app, "carol", "big")
    ws = await open_ws(app.http_port, await new_session(app.http_port, "big", "big"))
    await ws.send("x" * 2000)
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(ws.recv(), 3.0)
    assert ws.close_code == 1009
    assert "QUIT" in await irc.expect("QUIT")
    assert app.stats.ws.reaps["message_too_big"] == 1


async def test_flood_delays_then_excess_flood_closes(make_server: MakeServer) -> None:
    """Frames over the burst are delayed, in order, never dropped; past --recvq: 1008."""
    app = await make_server(flood_burst=2, flood_rate=50.0)
    ws = await open_ws(app.http_port, await new_session(app.http_port, "fast"))
    await request(ws, {"type": "join", "room": "f"})
    for i in range(8):
        await ws.send(orjson.dumps({"type": "say", "room": "f", "text": f"m{i}"}).decode())
    texts = [(await next_event(ws))["text"] for _ in range(8)]
    assert texts == [f"m{i}" for i in range(8)] and app.stats.ws.lines_delayed > 0
    await ws.close()
    app2 = await make_server(flood_burst=1, flood_rate=0.1, recvq=300)
    flooder = await open_ws(app2.http_port, await new_session(app2.http_port, "flooder"))
    with pytest.raises(ConnectionClosed):
        for _ in range(20):
            await flooder.send(orjson.dumps({"type": "ping", "pad": "p" * 40}).decode())
            await asyncio.sleep(0.01)
        await asyncio.wait_for(flooder.recv(), 3.0)
        await asyncio.wait_for(flooder.recv(), 3.0)
    assert (flooder.close_code, flooder.close_reason) == (1008, "Excess Flood")


async def test_close_codes(make_server: MakeServer) -> None:
    """Binary 1003, invalid UTF-8 1007, session ended 1000, replaced 4000, shutdown 1001."""
    app = await make_server()
    port = app.http_port
    binary = await open_ws(port, await new_session(port, "bin"))
    await binary.send(b"\x00\x01")
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(binary.recv(), 3.0)
    assert binary.close_code == 1003
    raw = await RawWs.open(port, f"/api/ws?token={await new_session(port, 'utf')}")
    raw.send_frame(Opcode.TEXT, b'{"type":"ping","x":"\xff"}')
    assert (await raw.close_frame())[0] == 1007
    token = await new_session(port, "ended")
    ended = await open_ws(port, token)
    assert (await call(port, "DELETE", "/api/sessions/me", token=token)).status == 204
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(ended.recv(), 3.0)
    assert (ended.close_code, ended.close_reason) == (1000, "Session ended")
    token = await new_session(port, "twice", "t")
    first = await open_ws(port, token)
    second = await open_ws(port, token)
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(first.recv(), 3.0)
    assert (first.close_code, first.close_reason) == (4000, "Replaced by a new connection")
    assert (await request(second, {"type": "say", "room": "t", "text": "still here"})
            )[-1]["type"] == "ack"  # the session went on
    await app.shutdown()
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(second.recv(), 3.0)
    assert (second.close_code, second.close_reason) == (1001, "Server shutting down")


async def test_resume_after_reconnect_has_no_loss_and_no_duplicate(
        make_server: MakeServer) -> None:
    """A new connection on the session resumes after the last id seen: nothing twice."""
    app = await make_server(history=5)
    irc = await irc_in(app, "carol", "r")
    token = await new_session(app.http_port, "alice")
    first = await open_ws(app.http_port, token)
    await request(first, {"type": "join", "room": "r"})
    await irc.send("PRIVMSG #r :one")
    seen = (await next_event(first))["id"]
    second = await open_ws(app.http_port, token)  # replaces the first
    await irc.send("PRIVMSG #r :two", "PRIVMSG #r :three")
    await irc.send("PING :sync")
    await irc.expect("PONG")
    got = await request(second, {"type": "resume", "room": "r", "after": seen})
    assert [f.get("text") for f in got[:-1]] == ["two", "three"]
    assert got[-1]["type"] == "resumed" and got[-1]["gap"] is False
    await irc.send("PRIVMSG #r :four")
    assert (await next_event(second))["text"] == "four"
    late = await request(second, {"type": "resume", "room": "r", "after": 0})
    assert late[-1]["gap"] is True  # history=5: the early events are gone, and it says so
    private = await request(second, {"type": "resume", "room": None, "after": 0})
    assert private[-1] == {"type": "resumed", "ref": private[-1]["ref"], "room": None,
                           "after": 0, "next": 0, "gap": False}
    await irc.send("PRIVMSG alice :psst")
    event = await next_event(second)
    assert event["room"] is None and event["to"] == "alice" and event["text"] == "psst"
    await second.close()


async def test_join_with_after_replays_then_goes_live(make_server: MakeServer) -> None:
    """join with 'after' replays what the room had after that id, then live events."""
    app = await make_server()
    irc = await irc_in(app, "carol", "j")
    await irc.send("PRIVMSG #j :before", "PING :x")
    await irc.expect("PONG")
    ws = await open_ws(app.http_port, await new_session(app.http_port, "alice"))
    got = await request(ws, {"type": "join", "room": "j", "after": 0})
    assert [f.get("kind") for f in got] == ["join", "message", "join", None]
    assert got[-1]["type"] == "joined" and got[-1]["next"] == got[-2]["id"]
    await ws.close()


async def test_meter_counts_the_websocket(make_server: MakeServer) -> None:
    """The session meter charges the WebSocket's bytes, one connection, pings, no requests."""
    # A long ping timeout: the next Ping goes out as soon as the Pong is in, and a loop
    # stalled for longer than a short timeout would reap the connection after one Ping.
    app = await make_server(ping_interval=0.05, ping_timeout=1.0)
    token = await new_session(app.http_port, "metered")
    ws = await open_ws(app.http_port, token)
    await eventually(lambda: app.stats.ws.pings_sent >= 2)
    me = (await call(app.http_port, "GET", "/api/sessions/me", token=token)).json()
    counters = me["counters"]
    assert counters["requests"] == 0 and counters["connections"] == 1
    assert counters["heartbeats"] >= 2 and counters["bytes_in"] > 100
    assert counters["bytes_out"] > 100  # the 101 answer and the hello
    await ws.close()




async def test_pong_round_trips_feed_the_rtt_histogram(make_server: MakeServer) -> None:
    """The library client's Pong to our Ping frame is measured (for /metrics)."""
    app = await make_server(ping_interval=0.05, ping_timeout=1.0)
    ws = await open_ws(app.http_port, await new_session(app.http_port, "pinger"))
    for _ in range(100):
        if app.stats.ws.heartbeat_rtt.count:
            break
        await asyncio.sleep(0.02)  # the client library answers our Ping frames itself
    assert app.stats.ws.heartbeat_rtt.count >= 1
    assert 0 <= app.stats.ws.heartbeat_rtt.total < 1
    await ws.close()


@pytest.mark.parametrize("share", [0.5, 0.0])
async def test_costly_flushes_widen_the_flush_window(make_server: MakeServer,
                                                      share: float) -> None:
    """The WebSocket side is paced like IRC: when every flush costs a lot of CPU (a fake CPU
    clock) the window grows to --flush-max and ten messages 10 ms apart reach a member in at
    most two flushes; with --flush-share 0 the 1 ms window stays and they go out (nearly)
    one flush each."""
    app = await make_server(flush_interval=0.001, flush_share=share, flush_max=0.5,
                            flood_burst=0)
    ticks = itertools.count()
    app.ws.flusher.cpu_clock = lambda: float(next(ticks))  # every flush "costs" one second
    irc = await irc_in(app, "carol", "paced")
    ws = await open_ws(app.http_port, await new_session(app.http_port, "alice"))
    await request(ws, {"type": "join", "room": "paced"})
    await asyncio.sleep(0.6)  # a quiet spell longer than any window
    flushes = app.stats.ws.flushes
    for i in range(10):
        await irc.send(f"PRIVMSG #paced :line {i}")
        await asyncio.sleep(0.01)
    while (await next_event(ws))["text"] != "line 9":
        pass
    flushes = app.stats.ws.flushes - flushes
    if share:
        assert app.ws.flusher.pacer.window == 0.5 and 1 <= flushes <= 2
    else:
        assert app.ws.flusher.pacer.window == 0.001 and flushes >= 5
    await ws.close()
