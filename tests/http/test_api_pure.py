"""The API without a loop or a socket: each route is a function from a Request to an answer."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from chat.config import Config
from chat.core.clock import Now
from chat.core.hub import EventLog
from chat.engine.memory import MemoryEngine
from chat.http.answers import Answer, Later, Reply, StreamEvents, WaitForEvents
from chat.http.api import Api
from chat.http.wire import SSE_TYPE, Request
from chat.state import ServerState
from tests.engines import DeferredEngine

NOW = Now(1_700_000_000.0, 100.0)


def make_api(engine: type[MemoryEngine] = MemoryEngine, **overrides: Any) -> Api:
    cfg = Config(**overrides)
    state = ServerState(cfg, engine(history=cfg.history), max_clients=10,
                        wall=lambda: NOW.wall, mono=lambda: NOW.mono)
    return Api(state)


def req(method: str, url: str, body: Any = None, token: str | None = None,
        last_event_id: str | None = None) -> Request:
    request = Request()
    request.method = method
    request.url = url.encode()
    if token is not None:
        request.authorization = b"Bearer " + token.encode()
    if body is not None:
        request.body = body if isinstance(body, bytes) else orjson.dumps(body)
        request.has_body = True
        request.content_length = len(request.body)
    if last_event_id is not None:
        request.last_event_id = last_event_id.encode()
    return request


def reply(answer: Answer) -> Reply:
    assert isinstance(answer, Reply), answer
    return answer


def data(answer: Answer) -> Any:
    return orjson.loads(reply(answer).body)


def error(answer: Answer) -> tuple[int, str]:
    r = reply(answer)
    return r.status, orjson.loads(r.body)["error"]


def session(api: Api, nick: str, *rooms: str) -> str:
    token: str = data(api.handle(req("POST", "/api/sessions", {"nick": nick}), NOW))["token"]
    for room in rooms:
        assert reply(api.handle(req("POST", f"/api/rooms/{room}/join", token=token),
                                NOW)).status == 200
    return token


def test_public_routes() -> None:
    """healthz and stats need no session; stats carries the hub figures."""
    api = make_api()
    assert data(api.handle(req("GET", "/healthz"), NOW)) == {"status": "ok"}
    assert reply(api.handle(req("HEAD", "/healthz"), NOW)).status == 200
    session(api, "alice", "r")
    stats = data(api.handle(req("GET", "/api/stats"), NOW))
    assert stats["hub"]["users"] == 1 and stats["hub"]["sessions"] == 1
    assert stats["http"]["sessions_created"] == 1


def test_sessions_route() -> None:
    """POST /api/sessions: 201 with token and epoch; nick errors map to 400/409/411."""
    api = make_api()
    answer = reply(api.handle(req("POST", "/api/sessions", {"nick": "alice"}), NOW))
    assert answer.status == 201 and orjson.loads(answer.body)["nick"] == "alice"
    assert error(api.handle(req("POST", "/api/sessions", {"nick": "ALICE"}), NOW)) == \
        (409, "nick_in_use")
    assert error(api.handle(req("POST", "/api/sessions", {"nick": "9 x"}), NOW)) == \
        (400, "nick_invalid")
    assert error(api.handle(req("POST", "/api/sessions"), NOW)) == (411, "length_required")
    missing = reply(api.handle(req("POST", "/api/sessions", {"nik": "x"}), NOW))
    assert orjson.loads(missing.body)["message"] == "'nick' is missing"


def test_auth_errors() -> None:
    """No token, unknown token: 401 with WWW-Authenticate; unknown path 404; 405 lists Allow."""
    api = make_api()
    missing = reply(api.handle(req("GET", "/api/rooms"), NOW))
    assert missing.status == 401 and b"www-authenticate: Bearer" in missing.headers
    assert error(api.handle(req("GET", "/api/rooms", token="nope"), NOW)) == \
        (401, "unauthorized")
    assert error(api.handle(req("GET", "/nowhere"), NOW)) == (404, "not_found")
    not_allowed = reply(api.handle(req("PUT", "/api/sessions"), NOW))
    assert not_allowed.status == 405 and not_allowed.headers == b"allow: POST\r\n"


def test_rate_limit_answers_429_with_retry_after() -> None:
    """Past the burst, a session gets 429 with Retry-After, on the monotonic clock."""
    api = make_api(http_burst=2, http_rate=1.0)
    token = session(api, "busy")
    for _ in range(2):
        assert reply(api.handle(req("GET", "/api/rooms", token=token), NOW)).status == 200
    limited = reply(api.handle(req("GET", "/api/rooms", token=token), NOW))
    assert limited.status == 429 and limited.headers == b"retry-after: 1\r\n"
    later = Now(NOW.wall, NOW.mono + 1.0)
    assert reply(api.handle(req("GET", "/api/rooms", token=token), later)).status == 200


def test_room_routes() -> None:
    """join, members (with op flags), topic, rooms, part; each with its errors."""
    api = make_api()
    alice, bob = session(api, "alice", "r"), session(api, "bob")
    joined = data(api.handle(req("POST", "/api/rooms/r/join", token=bob), NOW))
    assert joined["members"] == ["alice", "bob"] and joined["topic"] == ""
    members = data(api.handle(req("GET", "/api/rooms/r/members", token=bob), NOW))["members"]
    assert [(m["nick"], m["op"]) for m in members] == [("alice", True), ("bob", False)]
    assert error(api.handle(req("POST", "/api/rooms/r/topic", {"topic": "x"}, bob), NOW)) == \
        (403, "not_chanop")
    topic = data(api.handle(req("POST", "/api/rooms/r/topic", {"topic": "hi"}, alice), NOW))
    assert (topic["topic"], topic["by"]) == ("hi", "alice")
    rooms = data(api.handle(req("GET", "/api/rooms", token=bob), NOW))["rooms"]
    assert rooms == [{"room": "r", "members": 2, "topic": "hi"}]
    assert reply(api.handle(req("POST", "/api/rooms/r/part", token=bob), NOW)).status == 204
    assert error(api.handle(req("POST", "/api/rooms/r/part", token=bob), NOW)) == \
        (403, "not_joined")
    assert error(api.handle(req("POST", "/api/rooms/a%20b/join", token=bob), NOW)) == \
        (400, "room_invalid")
    assert error(api.handle(req("GET", "/api/rooms/none/members", token=bob), NOW)) == \
        (404, "no_such_room")


def test_messages_poll_and_long_poll() -> None:
    """POST gives the id; GET answers now, or describes a wait when there is nothing yet."""
    api = make_api(max_wait=5.0)
    alice = session(api, "alice", "r")
    sent = reply(api.handle(req("POST", "/api/rooms/r/messages", {"text": "hi"}, alice), NOW))
    assert sent.status == 201
    event_id = orjson.loads(sent.body)["id"]
    polled = data(api.handle(req("GET", "/api/rooms/r/messages?since=0", token=alice), NOW))
    assert [(e["kind"], e["room"], e["text"]) for e in polled["events"]][-1] == \
        ("message", "r", "hi")
    assert polled["next"] == event_id
    waiting = api.handle(req("GET", f"/api/rooms/r/messages?since={event_id}&wait=60",
                             token=alice), NOW)
    assert isinstance(waiting, WaitForEvents)
    assert (waiting.since, waiting.timeout) == (event_id, 5.0)  # capped at --max-wait
    head = api.handle(req("HEAD", f"/api/rooms/r/messages?since={event_id}&wait=60",
                          token=alice), NOW)
    assert reply(head).status == 200
    assert error(api.handle(req("GET", "/api/rooms/r/messages?since=x", token=alice), NOW)) \
        == (400, "bad_parameter")
    missing = reply(api.handle(req("POST", "/api/rooms/r/messages", {"txt": "hi"}, alice), NOW))
    assert orjson.loads(missing.body)["message"] == "'text' is missing"
    long = api.handle(req("POST", "/api/rooms/r/messages", {"text": "x" * 600}, alice), NOW)
    assert error(long) == (400, "text_too_long")


def test_event_streams_are_described() -> None:
    """GET .../events describes a stream from Last-Event-ID (or since); HEAD answers now."""
    api = make_api()
    alice = session(api, "alice", "r")
    stream = api.handle(req("GET", "/api/rooms/r/events", token=alice, last_event_id="7"), NOW)
    assert isinstance(stream, StreamEvents) and stream.since == 7
    inbox = api.handle(req("GET", "/api/me/events?since=3", token=alice), NOW)
    assert isinstance(inbox, StreamEvents) and inbox.since == 3
    head = reply(api.handle(req("HEAD", "/api/rooms/r/events", token=alice), NOW))
    assert head.content_type == SSE_TYPE
    bad = api.handle(req("GET", "/api/rooms/r/events", token=alice, last_event_id="-1"), NOW)
    assert error(bad) == (400, "bad_parameter")


def test_private_messages() -> None:
    """POST /api/users/<nick>/messages lands in the recipient's inbox; unknown nick 404."""
    api = make_api()
    alice, bob = session(api, "alice"), session(api, "bob")
    assert reply(api.handle(req("POST", "/api/users/bob/messages", {"text": "psst"}, alice),
                            NOW)).status == 201
    inbox = data(api.handle(req("GET", "/api/me/messages", token=bob), NOW))["events"]
    assert [(e["nick"], e["to"], e["room"], e["text"]) for e in inbox] == \
        [("alice", "bob", None, "psst")]
    assert error(api.handle(req("POST", "/api/users/carol/messages", {"text": "x"}, alice),
                            NOW)) == (404, "no_such_nick")


class FakeHold:
    """Stands in for the adapter's held request (a long poll) in the session's holds."""

    def __init__(self, log: EventLog) -> None:
        self.log = log
        self.ended = False

    def end(self) -> None:
        self.ended = True


def test_session_end_and_expiry() -> None:
    """DELETE ends holds and quits; the sweep expires idle sessions, not those holding."""
    api = make_api(session_timeout=10.0)
    gone, idle, holding = session(api, "gone", "r"), session(api, "idle"), session(api, "held")
    me = data(api.handle(req("GET", "/api/sessions/me", token=gone), NOW))
    assert me == {"nick": "gone", "rooms": ["r"], "counters": {
        "requests": 1, "empty": 0, "bytes_in": 0, "bytes_out": 0, "connections": 0,
        "heartbeats": 0}}  # the join; bytes and connections are the adapter's to charge
    hold = FakeHold(api.engine.find_room("#r").log)  # type: ignore[union-attr]
    api.sessions.get(gone).holds.add(hold)  # type: ignore[union-attr]
    assert reply(api.handle(req("DELETE", "/api/sessions/me", token=gone), NOW)).status == 204
    assert hold.ended and api.engine.find_user("gone") is None
    api.sessions.get(holding).holds.add(FakeHold(EventLog(1, 0)))  # type: ignore[union-attr]
    api.sweep(Now(NOW.wall - 3600, NOW.mono + 5.0))  # the wall clock is not looked at
    assert api.engine.find_user("idle") is not None
    api.sweep(Now(NOW.wall, NOW.mono + 11.0))
    assert api.engine.find_user("idle") is None and api.engine.find_user("held") is not None
    assert error(api.handle(req("GET", "/api/sessions/me", token=idle), NOW)) == \
        (401, "unauthorized")


@pytest.mark.parametrize("method,url,body", [
    ("POST", "/api/rooms/r/messages", {"text": "later"}),
    ("POST", "/api/rooms/s/join", None),
])
def test_writes_the_engine_settles_later_are_answered_later(method: str, url: str,
                                                            body: Any) -> None:
    """With an engine that answers later, the API returns a Later that builds the reply."""
    api = make_api(engine=DeferredEngine)
    engine = api.engine
    assert isinstance(engine, DeferredEngine)
    pending = api.handle(req("POST", "/api/sessions", {"nick": "alice"}), NOW)
    assert isinstance(pending, Later)
    engine.settle()
    token = orjson.loads(pending.then(pending.pending.result()).body)["token"]
    joined = api.handle(req("POST", "/api/rooms/r/join", token=token), NOW)
    assert isinstance(joined, Later)
    engine.settle()
    answer = api.handle(req(method, url, body, token), NOW)
    assert isinstance(answer, Later) and not answer.pending.done
    engine.settle()
    assert answer.then(answer.pending.result()).status in (200, 201)


# --- running a room over HTTP (chat.http.roomops) --------------------------------------------

def post(api: Api, url: str, token: str, body: Any = None) -> Answer:
    return api.handle(req("POST", url, body if body is not None else {}, token), NOW)


def test_mode_route_sets_reads_and_refuses() -> None:
    """POST .../mode applies changes like IRC MODE; GET shows them; 403/400/404 refusals."""
    api = make_api()
    alice, bob = session(api, "alice", "r"), session(api, "bob", "r")
    changed = data(post(api, "/api/rooms/r/mode", alice,
                        {"modes": "+vkl-t", "args": ["bob", "sesame", "5"]}))
    assert changed == {"room": "r", "modes": "+vkl-t", "args": ["bob", "sesame", "5"],
                       "id": changed["id"], "refused": []}
    state = data(api.handle(req("GET", "/api/rooms/r/mode", token=bob), NOW))
    assert (state["modes"], state["key"], state["limit"]) == ("+nkl", "sesame", 5)
    assert error(post(api, "/api/rooms/r/mode", bob, {"modes": "+m"})) == (403, "not_chanop")
    assert error(post(api, "/api/rooms/r/mode", alice, {"modes": "+z"})) == \
        (400, "unknown_mode")
    assert error(post(api, "/api/rooms/r/mode", alice, {"modes": "+k", "args": ["a b"]})) == \
        (400, "invalid_mode_param")
    assert error(post(api, "/api/rooms/r/mode", alice, {"modes": "+o", "args": ["ghost"]})) \
        == (404, "no_such_nick")
    assert error(post(api, "/api/rooms/r/mode", alice, {"modes": "+o", "args": [1]})) == \
        (400, "bad_request")
    assert error(post(api, "/api/rooms/none/mode", alice, {"modes": "+m"})) == \
        (404, "no_such_room")


def test_mode_route_bans_and_partial_refusals() -> None:
    """+b over HTTP bans IRC and HTTP users alike; skipped targets come back as 'refused'."""
    api = make_api()
    alice = session(api, "alice", "r")
    carol = session(api, "carol")
    changed = data(post(api, "/api/rooms/r/mode", alice,
                        {"modes": "+bo", "args": ["carol", "carol"]}))
    assert changed["modes"] == "+b" and changed["args"] == ["carol!*@*"]
    assert [r["error"] for r in changed["refused"]] == ["user_not_in_channel"]
    assert error(post(api, "/api/rooms/r/join", carol)) == (403, "banned")
    bans = data(api.handle(req("GET", "/api/rooms/r/mode", token=alice), NOW))["bans"]
    assert [(b["mask"], b["by"]) for b in bans] == [("carol!*@*", "alice!alice@http")]


def test_kick_route_answers_the_kicked_pollers_and_refuses() -> None:
    """POST .../kick: the kick event is in the room's log; the kicked user is out (403)."""
    api = make_api()
    alice, bob = session(api, "alice", "r"), session(api, "bob", "r")
    assert error(post(api, "/api/rooms/r/kick", bob, {"nick": "alice"})) == (403, "not_chanop")
    assert error(post(api, "/api/rooms/r/kick", alice, {"nick": "ghost"})) == \
        (404, "no_such_nick")
    kicked = data(post(api, "/api/rooms/r/kick", alice, {"nick": "bob", "reason": "spam"}))
    assert kicked["nick"] == "bob"
    events = data(api.handle(req("GET", "/api/rooms/r/messages?since=0", token=alice),
                             NOW))["events"]
    assert events[-1] == {"id": kicked["id"], "ts": NOW.wall, "kind": "kick", "room": "r",
                          "nick": "alice", "text": "spam", "target": "bob"}
    assert error(api.handle(req("GET", "/api/rooms/r/messages", token=bob), NOW)) == \
        (403, "not_joined")
    assert error(post(api, "/api/rooms/r/kick", alice, {"nick": "bob"})) == \
        (404, "user_not_in_channel")


def test_invite_route_and_keyed_join() -> None:
    """POST .../invite lets an invited user into a +i room; join takes {"key"} for +k."""
    api = make_api()
    alice, bob = session(api, "alice", "r"), session(api, "bob")
    post(api, "/api/rooms/r/mode", alice, {"modes": "+ik", "args": ["sesame"]})
    assert error(post(api, "/api/rooms/r/join", bob)) == (403, "invite_only")
    invited = data(post(api, "/api/rooms/r/invite", alice, {"nick": "bob"}))
    assert invited["nick"] == "bob"
    inbox = data(api.handle(req("GET", "/api/me/messages", token=bob), NOW))["events"]
    assert [(e["kind"], e["room"], e["to"], e["nick"]) for e in inbox] == [
        ("invite", "r", "bob", "alice")]
    assert reply(post(api, "/api/rooms/r/join", bob)).status == 200
    assert error(post(api, "/api/rooms/r/invite", alice, {"nick": "bob"})) == \
        (409, "user_on_channel")
    post(api, "/api/rooms/r/mode", alice, {"modes": "-i"})
    carol = session(api, "carol")
    assert error(post(api, "/api/rooms/r/join", carol, {"key": "nope"})) == (403, "bad_key")
    assert reply(post(api, "/api/rooms/r/join", carol, {"key": "sesame"})).status == 200


def test_typing_and_message_tags() -> None:
    """Typing is a +typing TAGMSG a waiting poll gets; message posts carry a tags object."""
    api = make_api(max_wait=5.0)
    alice, bob = session(api, "alice", "r"), session(api, "bob", "r")
    since = data(api.handle(req("GET", "/api/rooms/r/messages", token=bob), NOW))["next"]
    typed = data(post(api, "/api/rooms/r/typing", alice, {"state": "active"}))
    # Not stored: a later poll has nothing, but the cursor moved past it (no gap).
    polled = data(api.handle(req("GET", f"/api/rooms/r/messages?since={since}", token=bob),
                             NOW))
    assert polled["events"] == [] and polled["gap"] is False
    assert typed["id"] > since
    assert error(post(api, "/api/rooms/r/typing", alice, {"state": "dancing"})) == \
        (400, "bad_request")
    assert reply(post(api, "/api/users/bob/typing", alice, {"state": "done"})).status == 200
    sent = data(post(api, "/api/rooms/r/messages", alice,
                     {"text": "re", "tags": {"+draft/reply": str(typed["id"])}}))
    events = data(api.handle(req("GET", f"/api/rooms/r/messages?since={since}", token=bob),
                             NOW))["events"]
    assert events[-1]["id"] == sent["id"] and events[-1]["tags"] == {
        "+draft/reply": str(typed["id"])}
    assert error(post(api, "/api/rooms/r/messages", alice,
                      {"text": "x", "tags": {"msgid": "1"}})) == (400, "bad_request")
    assert error(post(api, "/api/rooms/r/messages", alice,
                      {"text": "x", "tags": {"+big": "x" * 3000}})) == (400, "tags_too_long")


def test_secret_rooms_and_member_flags() -> None:
    """A +s room is hidden from outsiders' room list and members; members show voice."""
    api = make_api()
    alice, bob = session(api, "alice", "r"), session(api, "bob", "r")
    post(api, "/api/rooms/r/mode", alice, {"modes": "+sv", "args": ["bob"]})
    members = data(api.handle(req("GET", "/api/rooms/r/members", token=bob), NOW))["members"]
    assert [(m["nick"], m["op"], m["voice"]) for m in members] == [
        ("alice", True, False), ("bob", False, True)]
    eve = session(api, "eve")
    assert data(api.handle(req("GET", "/api/rooms", token=eve), NOW))["rooms"] == []
    assert error(api.handle(req("GET", "/api/rooms/r/members", token=eve), NOW)) == \
        (404, "no_such_room")


def test_killed_session_is_ended() -> None:
    """A user an IRC operator killed finds its token dead (401); its inbox holds the kill."""
    api = make_api()
    victim = session(api, "victim", "r")
    hub = api.engine.hub  # type: ignore[attr-defined]
    oper = hub.register("oper", "o", "h", "O", "irc", None, NOW.wall)
    hub.oper(oper, "admin", NOW.wall)
    inbox = api.sessions.get(victim).user.inbox  # type: ignore[union-attr]
    hub.kill(oper, "victim", "spam", NOW.wall)
    assert inbox.events[-1].kind == "kill" and inbox.events[-1].to_dict()["text"] == "spam"
    assert error(api.handle(req("GET", "/api/sessions/me", token=victim), NOW)) == \
        (401, "unauthorized")
    assert api.sessions.get(victim) is None
