#!/usr/bin/env python3
"""The reference for http-poll: the polling endpoints of ChatLab's API, written in aiohttp.

It is what a careful Python developer would write with the usual framework: aiohttp's web
application on uvloop, orjson for JSON, no access log, a bearer token checked on every
request, a bounded per-room history, and the same answers as ``chat serve`` for

    POST /api/sessions                    {"nick": "alice"} -> 201 {"token", "nick"}
    POST /api/rooms/{room}/join           -> 200 {"room", "members", "last_id"}
    POST /api/rooms/{room}/messages       {"text": "..."} -> 201 {"id", "ts"}
    GET  /api/rooms/{room}/messages?since=N&limit=L
                                          -> 200 {"events": [...], "next": N, "gap": false}

so that ``benchmarks/http_poll.py`` runs unchanged against both.  It is a measuring stick,
not a second server: no long polls, SSE, expiry or rate limits.

    python benchmarks/aiohttp_ref.py --port 31611
"""

from __future__ import annotations

import argparse
import asyncio
import re
import secrets
import time
from collections import deque
from typing import Any

import orjson
from aiohttp import web

ROOM_RE = re.compile(r"[A-Za-z0-9_-]{1,50}")
NICK_RE = re.compile(r"[A-Za-z\[\]\\`_^{|}][A-Za-z0-9\[\]\\`_^{|}-]{0,29}")
HISTORY = 1000


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _error(status: int, code: str, message: str) -> web.Response:
    return _json({"error": code, "message": message}, status)


class Room:
    __slots__ = ("name", "members", "log")

    def __init__(self, name: str) -> None:
        self.name = name
        self.members: set[str] = set()
        self.log: deque[dict[str, Any]] = deque(maxlen=HISTORY)


class State:
    def __init__(self) -> None:
        self.sessions: dict[str, str] = {}   # token -> nick
        self.nicks: set[str] = set()
        self.rooms: dict[str, Room] = {}
        self.next_id = 0


def _session(request: web.Request) -> str | None:
    auth = request.headers.get("Authorization", "")
    token = auth[7:] if auth.startswith("Bearer ") else request.query.get("token", "")
    state: State = request.app["state"]
    return state.sessions.get(token)


async def create_session(request: web.Request) -> web.Response:
    state: State = request.app["state"]
    try:
        nick = orjson.loads(await request.read())["nick"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return _error(400, "bad_request", "body must be JSON with a nick")
    if not isinstance(nick, str) or not NICK_RE.fullmatch(nick):
        return _error(400, "nick_invalid", "invalid nick")
    if nick.lower() in state.nicks:
        return _error(409, "nick_in_use", "nick taken")
    token = secrets.token_urlsafe(24)
    state.sessions[token] = nick
    state.nicks.add(nick.lower())
    return _json({"token": token, "nick": nick}, 201)


def _room(request: web.Request, create: bool) -> Room | web.Response:
    state: State = request.app["state"]
    name = request.match_info["room"]
    if not ROOM_RE.fullmatch(name):
        return _error(400, "room_invalid", "invalid room name")
    room = state.rooms.get(name.lower())
    if room is None:
        if not create:
            return _error(404, "no_such_room", "no such room")
        room = state.rooms[name.lower()] = Room(name)
    return room


async def join(request: web.Request) -> web.Response:
    nick = _session(request)
    if nick is None:
        return _error(401, "unauthorized", "missing or unknown token")
    room = _room(request, create=True)
    if isinstance(room, web.Response):
        return room
    room.members.add(nick)
    last_id = room.log[-1]["id"] if room.log else 0
    return _json({"room": room.name, "members": sorted(room.members), "last_id": last_id})


async def post_message(request: web.Request) -> web.Response:
    nick = _session(request)
    if nick is None:
        return _error(401, "unauthorized", "missing or unknown token")
    room = _room(request, create=False)
    if isinstance(room, web.Response):
        return room
    if nick not in room.members:
        return _error(403, "not_on_channel", "join the room first")
    try:
        text = orjson.loads(await request.read())["text"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return _error(400, "bad_request", "body must be JSON with a text")
    state: State = request.app["state"]
    state.next_id += 1
    event = {"id": state.next_id, "ts": time.time(), "kind": "message", "nick": nick,
             "text": str(text)}
    room.log.append(event)
    return _json({"id": event["id"], "ts": event["ts"]}, 201)


async def get_messages(request: web.Request) -> web.Response:
    if _session(request) is None:
        return _error(401, "unauthorized", "missing or unknown token")
    room = _room(request, create=False)
    if isinstance(room, web.Response):
        return room
    try:
        since = int(request.query.get("since", "0"))
        limit = min(1000, max(1, int(request.query.get("limit", "100"))))
    except ValueError:
        return _error(400, "bad_request", "since and limit must be integers")
    log = room.log
    events = [e for e in log if e["id"] > since][:limit] if log and log[-1]["id"] > since else []
    gap = bool(log) and since < log[0]["id"] - 1 and since > 0
    nxt = events[-1]["id"] if events else max(since, log[-1]["id"] if log else 0)
    return _json({"events": events, "next": nxt, "gap": gap})


def make_app() -> web.Application:
    app = web.Application()
    app["state"] = State()
    app.router.add_post("/api/sessions", create_session)
    app.router.add_post("/api/rooms/{room}/join", join)
    app.router.add_post("/api/rooms/{room}/messages", post_message)
    app.router.add_get("/api/rooms/{room}/messages", get_messages)
    return app


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=31611)
    args = ap.parse_args()
    try:
        import uvloop
        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    except ImportError:  # pragma: no cover
        loop = asyncio.new_event_loop()
    web.run_app(make_app(), host=args.host, port=args.port, access_log=None,
                print=None, backlog=4096, keepalive_timeout=15.0, loop=loop)


if __name__ == "__main__":
    main()
