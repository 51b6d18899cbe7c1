"""The OpenAPI 3 description of the HTTP API and the WebSocket frames (pure data).

:func:`describe` builds the document served at ``/api/openapi.json`` from the route table
itself (:data:`chat.http.routes.ROUTE_PATHS` and the API's method tables), so an operation
exists in the description exactly when the server answers it; :data:`OPERATIONS` only adds
the words and schemas.  ``tests/http/test_openapi.py`` checks both directions, and the
README's endpoint table against it.  The WebSocket frames are schemas
(``WsClientFrame``, ``WsServerFrame``) referenced from ``GET /api/ws``; the udp lane's
datagrams, which no HTTP path carries, are schemas too (``UdpClientDatagram``,
``UdpServerDatagram``), named in the description.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

VERSION = "0.1.0"

Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(required: list[str], **props: Schema) -> Schema:
    return {"type": "object", "required": required, "properties": props}


STR: Schema = {"type": "string"}
INT: Schema = {"type": "integer"}
NUM: Schema = {"type": "number"}
BOOL: Schema = {"type": "boolean"}

SCHEMAS: dict[str, Schema] = {
    "Error": _obj(["error", "message"], error=STR, message=STR),
    "Event": _obj(["id", "ts", "kind", "room", "nick", "text"], id=INT, ts=NUM,
                  kind={"type": "string", "enum": ["message", "notice", "join", "part", "quit",
                                                   "nick", "topic", "mode", "kick", "tagmsg",
                                                   "invite", "kill"]},
                  room={"type": ["string", "null"]}, to=STR, nick=STR, text=STR,
                  args={"type": "array", "items": STR}, target=STR,
                  tags={"type": "object", "additionalProperties": STR}),
    "Poll": _obj(["events", "next", "gap", "epoch"], events={"type": "array",
                                                             "items": _ref("Event")},
                 next=INT, gap=BOOL, epoch=INT),
    "Session": _obj(["token", "nick", "epoch"], token=STR, nick=STR, epoch=INT),
    "Counters": _obj(["requests", "empty", "bytes_in", "bytes_out", "connections",
                      "heartbeats"], requests=INT, empty=INT, bytes_in=INT, bytes_out=INT,
                     connections=INT, heartbeats=INT),
    "Me": _obj(["nick", "rooms", "counters"], nick=STR,
               rooms={"type": "array", "items": STR}, counters=_ref("Counters")),
    "Joined": _obj(["room", "members", "members_total", "last_id", "topic", "epoch"],
                   room=STR,
                   members={"type": "array", "items": STR}, members_total=INT, last_id=INT,
                   topic=STR, epoch=INT),
    "Member": _obj(["nick", "transport", "op", "voice", "away", "idle_s"], nick=STR,
                   transport={"type": "string", "enum": ["irc", "http", "ws", "udp"]},
                   op=BOOL,
                   voice=BOOL, away={"type": ["string", "null"]}, idle_s=NUM),
    "Members": _obj(["room", "members", "total", "next"], room=STR,
                    members={"type": "array", "items": _ref("Member")}, total=INT,
                    next={"type": ["integer", "null"]}),
    "Rooms": _obj(["rooms"], rooms={"type": "array", "items": _obj(
        ["room", "members", "topic"], room=STR, members=INT, topic=STR)}),
    "Sent": _obj(["id", "ts"], id=INT, ts=NUM),
    "Topic": _obj(["room", "topic", "by", "id"], room=STR, topic=STR, by=STR, id=INT),
    "NickBody": _obj(["nick"], nick=STR),
    "SessionBody": _obj(["nick"], nick=STR, password=STR),
    "TextBody": _obj(["text"], text=STR,
                     tags={"type": "object", "additionalProperties": STR,
                           "description": "Client-only tags: '+name' or '+vendor/name'"}),
    "ModeBody": _obj(["modes"], modes=STR, args={"type": "array", "items": STR}),
    "Modes": _obj(["room", "modes", "created"], room=STR, modes=STR, created=NUM,
                  key={"type": ["string", "null"]}, limit={"type": ["integer", "null"]},
                  bans={"type": "array", "items": _obj(["mask", "by", "ts"], mask=STR, by=STR,
                                                       ts=NUM)}),
    "ModeChanged": _obj(["room", "modes", "args", "id", "refused"], room=STR, modes=STR,
                        args={"type": "array", "items": STR}, id={"type": ["integer", "null"]},
                        refused={"type": "array", "items": _obj(
                            ["error", "message", "subject"], error=STR, message=STR,
                            subject=STR)}),
    "KickBody": _obj(["nick"], nick=STR, reason=STR),
    "Targeted": _obj(["room", "nick", "id"], room=STR, nick=STR, id=INT),
    "TypingBody": _obj([], state={"type": "string", "enum": ["active", "paused", "done"]}),
    "TopicBody": _obj(["topic"], topic=STR),
    "ReasonBody": _obj([], reason=STR),
    "WsClientFrame": {
        "description": "A text frame from the client: one JSON object. 'ref' (any string or "
                       "number) is echoed in the answer. join/resume with 'after' replay "
                       "what came after that id first (gap rule as in polls).",
        "oneOf": [
            _obj(["type", "room", "text"], type={"const": "say"}, room=STR, text=STR, ref=STR,
                 tags={"type": "object", "additionalProperties": STR}),
            _obj(["type", "to", "text"], type={"const": "msg"}, to=STR, text=STR, ref=STR,
                 tags={"type": "object", "additionalProperties": STR}),
            _obj(["type", "room"], type={"const": "join"}, room=STR, after=INT, key=STR,
                 ref=STR),
            _obj(["type"], type={"const": "typing"}, room=STR, to=STR,
                 state={"type": "string", "enum": ["active", "paused", "done"]}, ref=STR),
            _obj(["type", "room"], type={"const": "part"}, room=STR, reason=STR, ref=STR),
            _obj(["type", "nick"], type={"const": "nick"}, nick=STR, ref=STR),
            _obj(["type", "room", "topic"], type={"const": "topic"}, room=STR, topic=STR,
                 ref=STR),
            _obj(["type", "room"], type={"const": "resume"}, room={"type": ["string", "null"]},
                 after=INT, limit=INT, ref=STR),
            _obj(["type", "room"], type={"const": "members"}, room=STR, offset=INT, limit=INT,
                 ref=STR),
            _obj(["type"], type={"const": "ping"}, ref=STR),
        ]},
    "WsServerFrame": {
        "description": "A text frame from the server: an Event (has 'kind'), or a control "
                       "frame (has 'type').",
        "oneOf": [
            _ref("Event"),
            _obj(["type", "nick", "rooms", "epoch"], type={"const": "hello"}, nick=STR,
                 rooms={"type": "array", "items": STR}, epoch=INT, ping_interval=NUM),
            _obj(["type", "op"], type={"const": "ack"}, op=STR, ref=STR, id=INT, ts=NUM,
                 nick=STR),
            _obj(["type", "room", "members", "last_id", "topic", "next", "gap"],
                 type={"const": "joined"}, ref=STR, room=STR,
                 members={"type": "array", "items": STR}, members_total=INT, last_id=INT,
                 topic=STR, next=INT, gap=BOOL, epoch=INT),
            _obj(["type", "room", "next", "gap"], type={"const": "resumed"}, ref=STR,
                 room={"type": ["string", "null"]}, after=INT, next=INT, gap=BOOL),
            _obj(["type", "room", "members"], type={"const": "members"}, ref=STR, room=STR,
                 members={"type": "array", "items": _ref("Member")}, total=INT,
                 next={"type": ["integer", "null"]}),
            _obj(["type"], type={"const": "pong"}, ref=STR, ts=NUM),
            _obj(["type", "op", "error", "message"], type={"const": "error"}, op=STR, ref=STR,
                 error=STR, message=STR),
        ]},
    "UdpClientDatagram": {
        "description": "A datagram to --udp-port (GET /api/stats: udp.port): one JSON "
                       "object with the HTTP session token. 'pad' is filler: no answer is "
                       "larger than the datagram it answers.",
        "oneOf": [
            _obj(["type", "token"], type={"const": "register"}, token=STR, pad=STR),
            _obj(["type", "token"], type={"const": "keepalive"}, token=STR, pad=STR),
        ]},
    "UdpServerDatagram": {
        "description": "A datagram from the server: an event with its registration's 'seq' "
                       "(1, 2, ...: a gap is a loss) and 'prev' (the previous event id sent "
                       "for that room, 0 first: fetch what lies between over HTTP), a 'big' "
                       "marker for an event too large to send, or a control datagram.",
        "oneOf": [
            _obj(["seq", "prev", "event"], seq=INT, prev=INT, event=_ref("Event")),
            _obj(["seq", "prev", "room", "id", "big"], seq=INT, prev=INT,
                 room={"type": ["string", "null"]}, id=INT, big={"const": True}),
            _obj(["type", "reg", "seq", "timeout"], type={"const": "registered"}, reg=INT,
                 seq=INT, timeout=NUM),
            _obj(["type", "reg", "seq"], type={"const": "ack"}, reg=INT, seq=INT),
            _obj(["type", "error"], type={"const": "error"},
                 error={"type": "string", "enum": ["unauthorized", "not_registered",
                                                   "bad_request"]}),
            _obj(["type", "reason"], type={"const": "end"}, reason=STR),
        ]},
}

ERROR = {"description": "An error (see the README's table of codes)",
         "content": {"application/json": {"schema": _ref("Error")}}}


def _json(schema: str, description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {
        "schema": _ref(schema)}}}


_POLL_PARAMS = [("since", INT, "Events after this id"), ("limit", INT, "At most this many"),
                ("wait", NUM, "Long poll: hold up to this many seconds")]
_STREAM = {"200": {"description": "text/event-stream: id/event/data blocks",
                   "content": {"text/event-stream": {"schema": STR}}}}

# (route, METHOD) -> (summary, request body schema or None, query params, responses).
OPERATIONS: dict[tuple[str, str], tuple[str, str | None, list[tuple[str, Schema, str]],
                                        dict[str, Any]]] = {
    ("sessions", "POST"): ("Create a session (sign in under a nick)", "SessionBody", [],
                           {"201": _json("Session", "Created")}),
    ("session_me", "GET"): ("Your nick, rooms and what your session has cost (unmetered)",
                            None, [], {"200": _json("Me")}),
    ("session_me", "DELETE"): ("End the session: a QUIT with the reason", "ReasonBody", [],
                               {"204": {"description": "Ended"}}),
    ("rooms", "GET"): ("The rooms", None, [], {"200": _json("Rooms")}),
    ("room_join", "POST"): ("Join (and create) a room; an optional body {\"key\"} for a +k "
                            "room", None, [], {"200": _json("Joined")}),
    ("room_part", "POST"): ("Leave a room", "ReasonBody", [], {"204": {"description": "Left"}}),
    ("room_topic", "POST"): ("Set the topic (room operators)", "TopicBody", [],
                             {"200": _json("Topic")}),
    ("room_messages", "GET"): ("Poll (or long-poll) the room's events", None, _POLL_PARAMS,
                               {"200": _json("Poll")}),
    ("room_messages", "POST"): ("Send a message to the room", "TextBody", [],
                                {"201": _json("Sent", "Sent")}),
    ("room_events", "GET"): ("The room's events as Server-Sent Events", None,
                             [("since", INT, "Replay after this id (or Last-Event-ID)")],
                             _STREAM),
    ("room_members", "GET"): ("The members, with transport, a page at a time", None,
                              [("offset", INT, "Skip this many members (default 0)"),
                               ("limit", INT, "At most this many (default --join-members)")],
                              {"200": _json("Members")}),
    ("user_messages", "POST"): ("Send a private message", "TextBody", [],
                                {"201": _json("Sent", "Sent")}),
    ("me_messages", "GET"): ("Poll your private messages", None, _POLL_PARAMS,
                             {"200": _json("Poll")}),
    ("me_events", "GET"): ("Your private messages as Server-Sent Events", None,
                           [("since", INT, "Replay after this id")], _STREAM),
    ("ws", "GET"): ("Open a WebSocket (RFC 6455): frames are WsClientFrame / WsServerFrame",
                    None, [], {"101": {"description": "Switching Protocols; then text frames "
                                                      "of JSON: WsClientFrame up, "
                                                      "WsServerFrame down",
                                       "content": {"application/json": {"schema": {
                                           "oneOf": [_ref("WsClientFrame"),
                                                     _ref("WsServerFrame")]}}}},
                               "426": ERROR}),
    ("stats", "GET"): ("Counters per transport and hub figures", None, [],
                       {"200": {"description": "OK", "content": {"application/json": {
                           "schema": {"type": "object"}}}}}),
    ("openapi", "GET"): ("This description", None, [],
                         {"200": {"description": "OpenAPI 3.1", "content": {
                             "application/json": {"schema": {"type": "object"}}}}}),
    ("healthz", "GET"): ("Liveness (answered even at --max-clients)", None, [],
                         {"200": {"description": "OK"}}),
    ("readyz", "GET"): ("Readiness: accepting new clients (not draining, not full)", None, [],
                        {"200": {"description": "Ready"},
                         "503": {"description": "Draining or full"}}),
    ("metrics", "GET"): ("The counters in Prometheus text format", None, [],
                         {"200": {"description": "text/plain; version=0.0.4",
                                  "content": {"text/plain": {"schema": STR}}}}),
    ("page", "GET"): ("The chat and race page", None, [],
                      {"200": {"description": "HTML", "content": {"text/html": {
                          "schema": STR}}}}),
    ("static", "GET"): ("A file of the page", None, [],
                        {"200": {"description": "The file"}, "404": ERROR}),
    ("room_mode", "GET"): ("The room's modes, key and limit (to members) and bans", None, [],
                           {"200": _json("Modes")}),
    ("room_mode", "POST"): ("Change modes like IRC MODE (room operators)", "ModeBody", [],
                            {"200": _json("ModeChanged")}),
    ("room_kick", "POST"): ("Kick a member (room operators)", "KickBody", [],
                            {"200": _json("Targeted")}),
    ("room_invite", "POST"): ("Invite a user (past +i, +k, +l, once)", "NickBody", [],
                              {"200": _json("Targeted")}),
    ("room_typing", "POST"): ("A typing notice to the room (+typing TAGMSG, not stored)",
                              "TypingBody", [], {"200": _json("Sent")}),
    ("user_typing", "POST"): ("A typing notice to one user", "TypingBody", [],
                              {"200": _json("Sent")}),
}
PUBLIC_ROUTES = frozenset({"sessions", "stats", "openapi", "healthz", "readyz", "metrics",
                           "page", "static"})
_COMMON = [("close", {"type": "string", "enum": ["1"]},
            "Answer with Connection: close and close the TCP connection")]


def _operation(route: str, method: str, template: str) -> dict[str, Any]:
    base = "GET" if method == "HEAD" else method
    summary, body, params, responses = OPERATIONS[(route, base)]
    op: dict[str, Any] = {"operationId": f"{method.lower()}_{route}", "summary": summary,
                          "responses": {**responses, "default": ERROR}}
    names = [part[1:-1] for part in template.split("/") if part.startswith("{")]
    op["parameters"] = (
        [{"name": n, "in": "path", "required": True, "schema": STR} for n in names]
        + [{"name": n, "in": "query", "schema": s, "description": d}
           for n, s, d in params + _COMMON])
    if body is not None:
        op["requestBody"] = {"required": method != "DELETE", "content": {
            "application/json": {"schema": _ref(body)}}}
    if route not in PUBLIC_ROUTES:
        op["security"] = [{"bearer": []}, {"token": []}]
    return op


def describe(paths: Mapping[str, str], *tables: Mapping[str, Mapping[str, Any]]
             ) -> dict[str, Any]:
    """The OpenAPI document for the routes in ``tables`` (route -> method -> handler)."""
    out: dict[str, dict[str, Any]] = {}
    for table in tables:
        for route, methods in table.items():
            template = paths[route]
            for method in methods:
                out.setdefault(template, {})[method.lower()] = _operation(route, method,
                                                                          template)
    return {
        "openapi": "3.1.0",
        "info": {"title": "ChatLab API", "version": VERSION,
                 "description": "Rooms and private messages over HTTP polling, long "
                                "polling, SSE and WebSocket. OPTIONS on any path answers "
                                "CORS preflights (see --cors-origin). Sessions may also "
                                "have their events pushed as UDP datagrams: see the "
                                "UdpClientDatagram and UdpServerDatagram schemas."},
        "paths": dict(sorted(out.items())),
        "components": {"schemas": SCHEMAS, "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "token": {"type": "apiKey", "in": "query", "name": "token"}}},
    }
