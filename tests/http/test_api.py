"""The JSON API over loopback: every endpoint and every error answer."""

from __future__ import annotations

import asyncio

from tests.conftest import MakeServer

from .util import Conn, build, call, http_stats, new_session


def assert_error(resp: object, status: int, code: str) -> None:
    from .util import Response
    assert isinstance(resp, Response)
    assert resp.status == status, resp
    body = resp.json()
    assert body["error"] == code and isinstance(body["message"], str) and body["message"]


# --- sessions and auth ------------------------------------------------------------------------

async def test_create_session(make_server: MakeServer) -> None:
    """POST /api/sessions returns 201 with a token and the nick."""
    app = await make_server()
    resp = await call(app.http_port, "POST", "/api/sessions", body={"nick": "alice"})
    assert resp.status == 201
    assert resp.json()["nick"] == "alice" and len(resp.json()["token"]) >= 20
    assert app.engine.find_user("alice") is not None


async def test_session_errors(make_server: MakeServer) -> None:
    """Invalid nick 400, taken nick 409, no body 411, bad JSON 400, wrong shape 400."""
    app = await make_server()
    port = app.http_port
    await new_session(port, "taken")
    assert_error(await call(port, "POST", "/api/sessions", body={"nick": "9bad nick"}),
                 400, "nick_invalid")
    assert_error(await call(port, "POST", "/api/sessions", body={"nick": "TAKEN"}),
                 409, "nick_in_use")
    assert_error(await call(port, "POST", "/api/sessions"), 411, "length_required")
    assert_error(await call(port, "POST", "/api/sessions", raw_body=b"{nope"), 400, "bad_json")
    assert_error(await call(port, "POST", "/api/sessions", body=["x"]), 400, "bad_json")
    assert_error(await call(port, "POST", "/api/sessions", body={"nick": 5}), 400, "bad_request")


async def test_token_required_and_checked(make_server: MakeServer) -> None:
    """Missing, unknown or non-Bearer credentials get 401 with WWW-Authenticate."""
    app = await make_server()
    port = app.http_port
    resp = await call(port, "GET", "/api/sessions/me")
    assert_error(resp, 401, "unauthorized")
    assert resp.headers["www-authenticate"] == "Bearer"
    assert_error(await call(port, "GET", "/api/sessions/me", token="nope"), 401, "unauthorized")
    assert_error(await call(port, "GET", "/api/rooms",
                            headers={"Authorization": "Basic eDp5"}), 401, "unauthorized")


async def test_session_me_reads_the_meter(make_server: MakeServer) -> None:
    """GET /api/sessions/me tells nick, rooms and counters, without counting itself."""
    app = await make_server()
    token = await new_session(app.http_port, "browser", "web")
    resp = await call(app.http_port, "GET", "/api/sessions/me", token=token)
    body = resp.json()
    counters = body.pop("counters")
    assert resp.status == 200 and body == {"nick": "browser", "rooms": ["web"]}
    # The join (one request on its own connection) is metered; this reading is not.
    assert {k: counters[k] for k in ("requests", "empty", "connections", "heartbeats")} == \
        {"requests": 1, "empty": 0, "connections": 1, "heartbeats": 0}
    assert counters["bytes_in"] > 50 and counters["bytes_out"] > 100


async def test_delete_session_quits(make_server: MakeServer) -> None:
    """DELETE /api/sessions/me: 204, the token dies, rooms see a QUIT, the nick is free."""
    app = await make_server()
    port = app.http_port
    leaver = await new_session(port, "leaver", "exit")
    stayer = await new_session(port, "stayer", "exit")
    since = (await call(port, "GET", "/api/rooms/exit/messages", token=stayer)).json()["next"]
    resp = await call(port, "DELETE", "/api/sessions/me", token=leaver, body={"reason": "bye"})
    assert resp.status == 204 and resp.body == b""
    assert_error(await call(port, "GET", "/api/sessions/me", token=leaver), 401, "unauthorized")
    events = (await call(port, "GET", f"/api/rooms/exit/messages?since={since}",
                         token=stayer)).json()["events"]
    assert [(e["kind"], e["nick"], e["text"]) for e in events] == [("quit", "leaver", "bye")]
    await new_session(port, "leaver")


async def test_rate_limit_429(make_server: MakeServer) -> None:
    """A session over its burst gets 429 with Retry-After; others are not affected."""
    app = await make_server(http_rate=0.5, http_burst=3)
    port = app.http_port
    greedy = await new_session(port, "greedy")
    calm = await new_session(port, "calm")
    conn = await Conn.open(port)
    statuses = [(await conn.request("GET", "/api/sessions/me", token=greedy)).status
                for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = await conn.request("GET", "/api/sessions/me", token=greedy)
    assert_error(limited, 429, "rate_limited")
    assert int(limited.headers["retry-after"]) >= 1
    assert (await conn.request("GET", "/api/sessions/me", token=calm)).status == 200


# --- rooms ------------------------------------------------------------------------------------

async def test_join_and_part(make_server: MakeServer) -> None:
    """Join returns room, members, last_id; joining twice is harmless; part is 204."""
    app = await make_server()
    port = app.http_port
    alice = await new_session(port, "alice", "lobby")
    bob = await new_session(port, "bob")
    resp = await call(port, "POST", "/api/rooms/lobby/join", token=bob)
    body = resp.json()
    assert resp.status == 200 and body["room"] == "lobby"
    assert sorted(body["members"]) == ["alice", "bob"] and body["last_id"] >= 2
    assert (await call(port, "POST", "/api/rooms/lobby/join", token=bob)).status == 200
    resp = await call(port, "POST", "/api/rooms/lobby/part", token=bob, body={"reason": "later"})
    assert resp.status == 204
    events = (await call(port, "GET", "/api/rooms/lobby/messages", token=alice)).json()["events"]
    assert [(e["kind"], e["nick"]) for e in events][-1] == ("part", "bob")
    assert events[-1]["text"] == "later"


async def test_room_errors(make_server: MakeServer) -> None:
    """Bad room name 400, unknown room 404, not joined 403."""
    app = await make_server()
    port = app.http_port
    alice = await new_session(port, "alice", "lobby")
    bob = await new_session(port, "bob")
    assert_error(await call(port, "POST", "/api/rooms/no.dots/join", token=bob),
                 400, "room_invalid")
    assert_error(await call(port, "GET", "/api/rooms/ghost/messages", token=bob),
                 404, "no_such_room")
    assert_error(await call(port, "POST", "/api/rooms/ghost/part", token=bob),
                 404, "no_such_room")
    assert_error(await call(port, "GET", "/api/rooms/lobby/messages", token=bob),
                 403, "not_joined")
    assert_error(await call(port, "POST", "/api/rooms/lobby/messages", token=bob,
                            body={"text": "hi"}), 403, "not_joined")
    assert_error(await call(port, "POST", "/api/rooms/lobby/part", token=bob), 403, "not_joined")
    assert alice


async def test_list_rooms_and_members(make_server: MakeServer) -> None:
    """GET /api/rooms lists rooms; members shows nick, transport and idle_s."""
    app = await make_server()
    port = app.http_port
    alice = await new_session(port, "alice", "lobby", "dev")
    rooms = (await call(port, "GET", "/api/rooms", token=alice)).json()["rooms"]
    assert sorted(r["room"] for r in rooms) == ["dev", "lobby"]
    resp = await call(port, "GET", "/api/rooms/lobby/members", token=alice)
    assert resp.status == 200
    [member] = resp.json()["members"]
    assert member["nick"] == "alice" and member["transport"] == "http"
    assert member["idle_s"] >= 0
    assert_error(await call(port, "GET", "/api/rooms/none/members", token=alice),
                 404, "no_such_room")


# --- messages -----------------------------------------------------------------------------------

async def test_post_and_poll_messages(make_server: MakeServer) -> None:
    """Posted messages come back in order with ids; next is the cursor; limit caps."""
    app = await make_server()
    port = app.http_port
    alice = await new_session(port, "alice", "lobby")
    start = (await call(port, "GET", "/api/rooms/lobby/messages", token=alice)).json()["next"]
    ids = []
    for i in range(3):
        resp = await call(port, "POST", "/api/rooms/lobby/messages", token=alice,
                          body={"text": f"m{i}"})
        assert resp.status == 201 and isinstance(resp.json()["ts"], float)
        ids.append(resp.json()["id"])
    assert ids == sorted(ids)
    page = (await call(port, "GET", f"/api/rooms/lobby/messages?since={start}&limit=2",
                       token=alice)).json()
    assert [e["text"] for e in page["events"]] == ["m0", "m1"]
    assert page["next"] == ids[1] and page["gap"] is False
    rest = (await call(port, "GET", f"/api/rooms/lobby/messages?since={page['next']}",
                       token=alice)).json()
    assert [(e["id"], e["kind"], e["nick"], e["text"]) for e in rest["events"]] == \
        [(ids[2], "message", "alice", "m2")]
    empty = (await call(port, "GET", f"/api/rooms/lobby/messages?since={rest['next']}",
                        token=alice)).json()
    assert empty == {"events": [], "next": ids[2], "gap": False, "epoch": app.engine.epoch}
    latest = (await call(port, "GET", "/api/rooms/lobby/messages?limit=1",
                         token=alice)).json()
    assert [e["text"] for e in latest["events"]] == ["m2"]
    stats = await http_stats(port)
    assert stats["polls"] == 5 and stats["empty_polls"] == 1 and stats["messages"] == 3


async def test_message_errors(make_server: MakeServer) -> None:
    """Empty, multi-line, too long or non-string text and bad parameters get 400."""
    app = await make_server()
    port = app.http_port
    alice = await new_session(port, "alice", "lobby")
    url = "/api/rooms/lobby/messages"
    for body in ({"text": ""}, {"text": "a\r\nQUIT"}, {"text": 3}, {}):
        assert_error(await call(port, "POST", url, token=alice, body=body), 400, "bad_request")
    assert_error(await call(port, "POST", url, token=alice, body={"text": "x" * 600}),
                 400, "text_too_long")
    assert_error(await call(port, "POST", url, token=alice), 411, "length_required")
    for query in ("since=abc", "since=-1", "limit=0", "wait=-2", "wait=nan"):
        assert_error(await call(port, "GET", f"{url}?{query}", token=alice),
                     400, "bad_parameter")


async def test_gap_after_history_overflow(make_server: MakeServer) -> None:
    """A cursor older than the bounded history gets gap: true and the events still kept."""
    app = await make_server(history=5)
    port = app.http_port
    alice = await new_session(port, "alice", "tiny")
    start = (await call(port, "GET", "/api/rooms/tiny/messages", token=alice)).json()["next"]
    for i in range(10):
        await call(port, "POST", "/api/rooms/tiny/messages", token=alice, body={"text": str(i)})
    page = (await call(port, "GET", f"/api/rooms/tiny/messages?since={start}",
                       token=alice)).json()
    assert page["gap"] is True
    assert [e["text"] for e in page["events"]] == ["5", "6", "7", "8", "9"]
    again = (await call(port, "GET", f"/api/rooms/tiny/messages?since={page['events'][0]['id']}",
                        token=alice)).json()
    assert again["gap"] is False and len(again["events"]) == 4


async def test_long_poll_woken_by_http_message(make_server: MakeServer) -> None:
    """A held long poll answers as soon as another session posts."""
    app = await make_server()
    port = app.http_port
    alice = await new_session(port, "alice", "lobby")
    bob = await new_session(port, "bob", "lobby")
    since = (await call(port, "GET", "/api/rooms/lobby/messages", token=alice)).json()["next"]
    poller = await Conn.open(port)
    await poller.send(build("GET", f"/api/rooms/lobby/messages?since={since}&wait=10",
                            token=alice))
    await asyncio.sleep(0.05)
    assert app.stats.http.long_polls_open == 1
    await call(port, "POST", "/api/rooms/lobby/messages", token=bob, body={"text": "wake"})
    resp = await poller.response()
    assert [e["text"] for e in resp.json()["events"]] == ["wake"]
    stats = await http_stats(port)
    assert stats["long_polls_held"] == 1 and stats["long_polls_open"] == 0


async def test_long_poll_expires_empty(make_server: MakeServer) -> None:
    """Without events a long poll answers an empty list after wait (capped by max_wait)."""
    app = await make_server(max_wait=0.2)
    port = app.http_port
    alice = await new_session(port, "alice", "lobby")
    since = (await call(port, "GET", "/api/rooms/lobby/messages", token=alice)).json()["next"]
    resp = await call(port, "GET", f"/api/rooms/lobby/messages?since={since}&wait=30",
                      token=alice)
    assert resp.json() == {"events": [], "next": since, "gap": False,
                           "epoch": app.engine.epoch}


async def test_long_poll_ended_by_part(make_server: MakeServer) -> None:
    """Parting the room answers the session's long poll on it (with the part event)."""
    app = await make_server()
    port = app.http_port
    alice = await new_session(port, "alice", "lobby")
    since = (await call(port, "GET", "/api/rooms/lobby/messages", token=alice)).json()["next"]
    poller = await Conn.open(port)
    await poller.send(build("GET", f"/api/rooms/lobby/messages?since={since}&wait=10",
                            token=alice))
    await asyncio.sleep(0.05)
    assert (await call(port, "POST", "/api/rooms/lobby/part", token=alice)).status == 204
    resp = await poller.response()
    assert [e["kind"] for e in resp.json()["events"]] == ["part"]


async def test_head_on_poll_never_waits(make_server: MakeServer) -> None:
    """HEAD on a long-poll URL answers at once with headers only."""
    app = await make_server()
    port = app.http_port
    alice = await new_session(port, "alice", "lobby")
    conn = await Conn.open(port)
    await conn.send(build("HEAD", "/api/rooms/lobby/messages?since=999&wait=30", token=alice))
    status, headers, rest = await conn.head_response()
    assert status == 200 and headers["content-type"] == "application/json" and rest == b""


# --- private messages ----------------------------------------------------------------------------

async def test_private_messages_between_http_users(make_server: MakeServer) -> None:
    """POST /api/users/{nick}/messages lands in the recipient's /api/me/messages."""
    app = await make_server()
    port = app.http_port
    alice = await new_session(port, "alice")
    bob = await new_session(port, "[bob]")
    poller = await Conn.open(port)
    await poller.send(build("GET", "/api/me/messages?since=0&wait=10", token=bob))
    await asyncio.sleep(0.05)
    resp = await call(port, "POST", "/api/users/%5Bbob%5D/messages", token=alice,
                      body={"text": "psst"})
    assert resp.status == 201
    woken = (await poller.response()).json()
    assert [(e["nick"], e["text"]) for e in woken["events"]] == [("alice", "psst")]
    assert_error(await call(port, "POST", "/api/users/nobody/messages", token=alice,
                            body={"text": "hi"}), 404, "no_such_nick")
    mine = (await call(port, "GET", "/api/me/messages", token=alice)).json()
    assert mine["events"] == []


# --- SSE ------------------------------------------------------------------------------------------

async def test_sse_stream_and_heartbeat(make_server: MakeServer) -> None:
    """The SSE stream carries id/event/data blocks and comment heartbeats."""
    app = await make_server(sse_heartbeat=0.1)
    port = app.http_port
    alice = await new_session(port, "alice", "live")
    bob = await new_session(port, "bob", "live")
    conn = await Conn.open(port)
    await conn.send(build("GET", f"/api/rooms/live/events?token={alice}"))
    await conn.stream_until(b"retry:")
    assert conn.collector.current is not None
    headers = conn.collector.current.headers
    assert headers["content-type"] == "text/event-stream"
    assert headers["transfer-encoding"] == "chunked"
    resp = await call(port, "POST", "/api/rooms/live/messages", token=bob, body={"text": "yo"})
    msg_id = resp.json()["id"]
    body = await conn.stream_until(b'"yo"')
    assert f"id: {msg_id}\nevent: message\ndata: ".encode() in body
    assert b": heartbeat\n\n" in await conn.stream_until(b": heartbeat")
    stats = await http_stats(port)
    assert stats["sse_streams"] == 1 and stats["sse_streams_open"] == 1


async def test_sse_resumes_from_last_event_id(make_server: MakeServer) -> None:
    """A reconnect with Last-Event-ID replays exactly the events after it."""
    app = await make_server()
    port = app.http_port
    alice = await new_session(port, "alice", "live")
    ids = []
    for text in ("one", "two", "three"):
        resp = await call(port, "POST", "/api/rooms/live/messages", token=alice,
                          body={"text": text})
        ids.append(resp.json()["id"])
    conn = await Conn.open(port)
    await conn.send(build("GET", "/api/rooms/live/events?since=0", token=alice,
                          headers={"Last-Event-ID": str(ids[0])}))
    body = await conn.stream_until(b'"three"')
    assert b'"one"' not in body and b'"two"' in body
    assert f"id: {ids[1]}\n".encode() in body and f"id: {ids[2]}\n".encode() in body
    assert_error(await call(port, "GET", "/api/rooms/live/events", token=alice,
                            headers={"Last-Event-ID": "x"}), 400, "bad_parameter")


async def test_sse_reports_gap(make_server: MakeServer) -> None:
    """Resuming from an id that left the history starts with an event: gap block."""
    app = await make_server(history=5)
    port = app.http_port
    alice = await new_session(port, "alice", "live")
    for i in range(8):
        await call(port, "POST", "/api/rooms/live/messages", token=alice, body={"text": str(i)})
    conn = await Conn.open(port)
    await conn.send(build("GET", "/api/rooms/live/events?since=1", token=alice))
    body = await conn.stream_until(b'"7"')
    assert b"event: gap\n" in body and body.index(b"event: gap") < body.index(b'"3"')


async def test_sse_stream_ends_on_part_and_connection_is_reused(make_server: MakeServer) -> None:
    """Parting ends the chunked stream cleanly; the same connection serves the next request."""
    app = await make_server()
    port = app.http_port
    alice = await new_session(port, "alice", "live")
    conn = await Conn.open(port)
    await conn.send(build("GET", "/api/rooms/live/events", token=alice))
    await conn.stream_until(b"retry:")
    await call(port, "POST", "/api/rooms/live/part", token=alice)
    ended = await conn.response()
    assert ended.status == 200 and b"event: part\n" in ended.body
    assert (await conn.request("GET", "/healthz")).status == 200
    assert app.stats.http.sse_streams_open == 0


async def test_inbox_sse_stream(make_server: MakeServer) -> None:
    """GET /api/me/events streams private messages."""
    app = await make_server()
    port = app.http_port
    alice = await new_session(port, "alice")
    bob = await new_session(port, "bob")
    conn = await Conn.open(port)
    await conn.send(build("GET", "/api/me/events", token=bob))
    await conn.stream_until(b"retry:")
    await call(port, "POST", "/api/users/bob/messages", token=alice, body={"text": "secret"})
    assert b'"nick":"alice"' in await conn.stream_until(b'"secret"')


# --- presence -------------------------------------------------------------------------------------

async def test_session_expires_without_requests(make_server: MakeServer) -> None:
    """A silent session expires: 401 afterwards, co-members see QUIT, the nick is free."""
    app = await make_server(session_timeout=0.3)
    port = app.http_port
    await new_session(port, "sleepy", "lobby")
    watcher = await new_session(port, "watcher", "lobby")
    since = (await call(port, "GET", "/api/rooms/lobby/messages", token=watcher)).json()["next"]
    poll = await call(port, "GET", f"/api/rooms/lobby/messages?since={since}&wait=2",
                      token=watcher)
    assert [(e["kind"], e["nick"], e["text"]) for e in poll.json()["events"]] == \
        [("quit", "sleepy", "Session timeout")]
    await new_session(port, "sleepy")
    assert (await http_stats(port))["reaps"]["session_timeout"] >= 1


async def test_open_long_poll_keeps_session_alive(make_server: MakeServer) -> None:
    """A long poll longer than session_timeout counts as activity."""
    app = await make_server(session_timeout=0.2)
    port = app.http_port
    alice = await new_session(port, "alice", "lobby")
    since = (await call(port, "GET", "/api/rooms/lobby/messages", token=alice)).json()["next"]
    resp = await call(port, "GET", f"/api/rooms/lobby/messages?since={since}&wait=0.6",
                      token=alice)
    assert resp.status == 200
    assert (await call(port, "GET", "/api/sessions/me", token=alice)).status == 200


# --- misc -----------------------------------------------------------------------------------------

async def test_unknown_path_and_method(make_server: MakeServer) -> None:
    """Unknown paths get 404; a known path with a wrong method gets 405 and Allow."""
    app = await make_server()
    port = app.http_port
    assert_error(await call(port, "GET", "/nowhere"), 404, "not_found")
    assert_error(await call(port, "GET", "/api/rooms/x/y/z"), 404, "not_found")
    resp = await call(port, "PUT", "/api/sessions")
    assert_error(resp, 405, "method_not_allowed")
    assert resp.headers["allow"] == "POST"


async def test_stats_and_healthz(make_server: MakeServer) -> None:
    """/healthz is 200; /api/stats has both transports' counters and hub counts."""
    app = await make_server()
    port = app.http_port
    assert (await call(port, "GET", "/healthz")).json() == {"status": "ok"}
    await new_session(port, "alice", "lobby")
    body = (await call(port, "GET", "/api/stats")).json()
    assert set(body) >= {"uptime_s", "irc", "http", "hub"}
    http = body["http"]
    for name in ("connections_accepted", "connections_open", "requests", "polls",
                 "empty_polls", "long_polls_held", "sse_streams", "bytes_in", "bytes_out",
                 "timeouts", "reaps", "sessions_created", "sessions_open"):
        assert name in http
    assert http["sessions_open"] == 1 and http["bytes_in"] > 0 and http["bytes_out"] > 0
    assert body["hub"]["users"] == 1 and body["hub"]["rooms"] == 1
