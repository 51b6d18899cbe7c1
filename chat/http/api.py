"""The JSON polling API: routes -> hub calls, sessions, request budgets, presence.

:meth:`Api.handle` takes one parsed :class:`Request` and returns ``(status, body, extra
header lines)``, or None when the request was answered directly or is held (long poll,
SSE stream; see :mod:`chat.http.streams`).  Every error is JSON ``{"error", "message"}``.

HTTP users are hub users with transport ``"http"``, no sink, user and host ``nick@http``
(IRC sees ``nick!nick@http``).  A session is kept alive by its requests: one sweep per
housekeeping tick (:meth:`Api.sweep`) expires sessions idle for ``session_timeout`` with a
QUIT ``Session timeout``; an open long poll or stream counts as activity.
"""

from __future__ import annotations

import logging
import math
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import orjson

from ..core.hub import EventLog, HubError, Room, User
from ..core.names import channel_to_room, room_to_channel
from .streams import EventStream, LongPoll
from .wire import (
    SSE_TYPE,
    BadParam,
    Request,
    error_body,
    float_param,
    int_param,
    json_body,
    opt_int_param,
    parse_query,
    poll_body,
)

if TYPE_CHECKING:
    from ..app import ChatServer
    from ..core.hub import Event
    from .server import HttpConnection, HttpServer

log = logging.getLogger(__name__)

Reply = tuple[int, bytes, bytes]  # status, body, extra header lines
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
IRC_LINE = 510  # bytes of an IRC line without CR LF: a relayed message must fit in one

HUB_STATUS = {"nick_invalid": 400, "nick_in_use": 409, "no_such_nick": 404,
              "channel_invalid": 400, "no_such_channel": 404, "not_on_channel": 403,
              "too_many_channels": 403, "not_chanop": 403}

_HEALTHY = json_body({"status": "ok"})
_UNAUTHORIZED = b"www-authenticate: Bearer\r\n"


class ApiError(Exception):
    """An error answer: status, stable code, human message, extra header lines."""

    def __init__(self, status: int, code: str, message: str, extra: bytes = b"") -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra


class Session:
    """One polling client: its hub user, token, activity and request budget."""

    __slots__ = ("token", "user", "last_seen", "allowance", "allowance_at", "holds")

    def __init__(self, token: str, user: User, now: float, burst: int) -> None:
        self.token = token
        self.user = user
        self.last_seen = now
        self.allowance = float(burst)  # token bucket: requests that may be made right now
        self.allowance_at = now
        self.holds: set[LongPoll | EventStream] = set()


Handler = Callable[["Api", Request, "HttpConnection", Session, str, dict[str, str], float],
                   "Reply | None"]
PublicHandler = Callable[["Api", Request, str, float], Reply]


def _route(parts: list[str]) -> tuple[str, str]:
    """(route name, path argument) for the split path, ("", "") if unknown."""
    match parts:
        case ["", "api", "rooms", room, "messages"]:
            return "room_messages", room
        case ["", "api", "rooms", room, "events"]:
            return "room_events", room
        case ["", "api", "rooms", room, "members"]:
            return "room_members", room
        case ["", "api", "rooms", room, "join"]:
            return "room_join", room
        case ["", "api", "rooms", room, "part"]:
            return "room_part", room
        case ["", "api", "rooms"]:
            return "rooms", ""
        case ["", "api", "me", "messages"]:
            return "me_messages", ""
        case ["", "api", "me", "events"]:
            return "me_events", ""
        case ["", "api", "users", nick, "messages"]:
            return "user_messages", nick
        case ["", "api", "sessions", "me"]:
            return "session_me", ""
        case ["", "api", "sessions"]:
            return "sessions", ""
        case ["", "api", "stats"]:
            return "stats", ""
        case ["", "healthz"]:
            return "healthz", ""
    return "", ""


class Api:
    """Routes and sessions of the HTTP side of one :class:`ChatServer`."""

    def __init__(self, app: ChatServer, server: HttpServer) -> None:
        self.app = app
        self.server = server
        self.hub = app.hub
        self.config = app.config
        self.stats = app.stats.http
        self.sessions: dict[str, Session] = {}
        self._empty: dict[int, bytes] = {}  # pre-encoded empty poll bodies by cursor

    # --- dispatch ------------------------------------------------------------------------------
    def handle(self, request: Request, conn: HttpConnection) -> Reply | None:
        """Answer ``request`` (or hold it); never raises."""
        try:
            return self._dispatch(request, conn)
        except ApiError as exc:
            return self._error(exc.status, exc.code, exc.message, exc.extra)
        except HubError as exc:
            return self._error(HUB_STATUS.get(exc.code, 400), exc.code, exc.message)
        except Exception:
            log.exception("error answering %r", request)
            return self._error(500, "internal", "Internal server error")

    def _error(self, status: int, code: str, message: str, extra: bytes = b"") -> Reply:
        self.stats.errors[code] += 1
        return status, error_body(code, message), extra

    def _dispatch(self, request: Request, conn: HttpConnection) -> Reply | None:
        url = request.url.decode("latin-1")
        path, _, query_string = url.partition("?")
        parts = path.split("/")
        if "%" in path:
            try:
                parts = [unquote(p, errors="strict") for p in parts]
            except UnicodeDecodeError:
                raise ApiError(400, "bad_request", "Path is not valid UTF-8") from None
        route, arg = _route(parts)
        method = request.method
        if route in PUBLIC:
            public = PUBLIC[route].get(method)
            if public is None:
                raise self._not_allowed(PUBLIC[route])
            return public(self, request, arg, self.app.clock())
        methods = ROUTES.get(route)
        if methods is None:
            raise ApiError(404, "not_found", f"No such path: {path[:200]}")
        handler = methods.get(method)
        if handler is None:
            raise self._not_allowed(methods)
        try:
            query = parse_query(query_string) if query_string else {}
        except UnicodeDecodeError:
            raise ApiError(400, "bad_request", "Query string is not valid UTF-8") from None
        now = self.app.clock()
        session = self._authenticate(request, query, now)
        return handler(self, request, conn, session, arg, query, now)

    @staticmethod
    def _not_allowed(methods: dict[str, Any]) -> ApiError:
        allow = ", ".join(sorted(methods))
        return ApiError(405, "method_not_allowed", f"Allowed methods: {allow}",
                        b"allow: %s\r\n" % allow.encode("ascii"))

    def _authenticate(self, request: Request, query: dict[str, str], now: float) -> Session:
        """The session named by ``Authorization: Bearer`` or ``?token=``; charges its budget."""
        auth = request.authorization
        if auth is not None:
            if auth[:7].lower() != b"bearer ":
                raise ApiError(401, "unauthorized", "Authorization must be 'Bearer <token>'",
                               _UNAUTHORIZED)
            token = auth[7:].strip().decode("latin-1")
        else:
            token = query.get("token", "")
            if not token:
                raise ApiError(401, "unauthorized",
                               "A session token is required (Authorization: Bearer or ?token=)",
                               _UNAUTHORIZED)
        session = self.sessions.get(token)
        if session is None:
            raise ApiError(401, "unauthorized", "Unknown or expired session token",
                           _UNAUTHORIZED)
        session.last_seen = now
        rate = self.config.http_rate
        if rate > 0:  # token bucket: refill by elapsed time, spend one per request
            allowance = min(float(max(1, self.config.http_burst)),
                            session.allowance + (now - session.allowance_at) * rate)
            session.allowance_at = now
            if allowance < 1.0:
                session.allowance = allowance
                retry = max(1, math.ceil((1.0 - allowance) / rate))
                raise ApiError(429, "rate_limited",
                               f"Over the budget of {rate:g} requests/s; retry in {retry} s",
                               b"retry-after: %d\r\n" % retry)
            session.allowance = allowance - 1.0
        return session

    # --- helpers ----------------------------------------------------------------------------------
    def poll_answer(self, events: list[Event], next_id: int, gap: bool) -> bytes:
        """Body of a poll answer, counted; empty answers come pre-encoded by cursor."""
        stats = self.stats
        stats.polls += 1
        if events:
            stats.deliveries += len(events)
            return poll_body(events, next_id, gap, self.hub.epoch)
        stats.empty_polls += 1
        if gap:
            return poll_body(events, next_id, gap, self.hub.epoch)
        body = self._empty.get(next_id)
        if body is None:
            if len(self._empty) >= 4096:  # bounded: cursors of rooms that moved on
                self._empty.clear()
            body = self._empty[next_id] = poll_body(events, next_id, False, self.hub.epoch)
        return body

    def _poll(self, request: Request, conn: HttpConnection, session: Session, log: EventLog,
              query: dict[str, str]) -> Reply | None:
        try:
            since = opt_int_param(query, "since")
            limit = min(int_param(query, "limit", DEFAULT_LIMIT, minimum=1), MAX_LIMIT)
            wait = min(float_param(query, "wait", 0.0), self.config.max_wait)
        except BadParam as exc:
            raise ApiError(400, "bad_parameter", str(exc)) from None
        events, next_id, gap = log.since(since, limit)
        if events or gap or wait <= 0 or request.method == "HEAD":
            return 200, self.poll_answer(events, next_id, gap), b""
        LongPoll(self, conn, request, session, log, next_id, limit, wait)
        return None

    def _stream(self, request: Request, conn: HttpConnection, session: Session,
                log: EventLog, query: dict[str, str]) -> None:
        try:
            if request.last_event_id is not None:  # a reconnecting EventSource: resume
                since: int | None = int(request.last_event_id)
                if since is not None and since < 0:
                    raise ValueError(since)
            else:
                since = opt_int_param(query, "since")
        except (ValueError, BadParam):
            raise ApiError(400, "bad_parameter",
                           "Last-Event-ID and since must be non-negative integers") from None
        if request.method == "HEAD":
            conn.respond(request, 200, b"", content_type=SSE_TYPE)
            return
        EventStream(self, conn, request, session, log, since)

    def _body(self, request: Request, required: bool = True) -> dict[str, Any]:
        """The JSON object in the body: 411 if a required body is absent, 400 if malformed."""
        if not request.has_body:
            if required:
                raise ApiError(411, "length_required",
                               "This request needs a JSON body with Content-Length")
            return {}
        if not request.body and not required:
            return {}
        try:
            value = orjson.loads(request.body)
        except orjson.JSONDecodeError as exc:
            raise ApiError(400, "bad_json", f"Body is not valid JSON: {exc}") from None
        if not isinstance(value, dict):
            raise ApiError(400, "bad_json", "Body must be a JSON object")
        return value

    @staticmethod
    def _string(body: dict[str, Any], name: str, default: str | None = None) -> str:
        value = body.get(name, default)
        if not isinstance(value, str):
            raise ApiError(400, "bad_request", f"'{name}' must be a string")
        if "\r" in value or "\n" in value or "\0" in value:
            raise ApiError(400, "bad_request", f"'{name}' must be one line (no CR, LF or NUL)")
        return value

    def _text(self, body: dict[str, Any], session: Session, target: str) -> str:
        """The message text: one non-empty line that fits one relayed IRC PRIVMSG."""
        text = self._string(body, "text")
        if not text:
            raise ApiError(400, "bad_request", "'text' must not be empty")
        room = IRC_LINE - len(f":{session.user.prefix} PRIVMSG {target} :".encode())
        if len(text.encode()) > room:
            raise ApiError(400, "text_too_long", f"Text longer than {room} bytes (UTF-8)")
        return text

    def _joined_room(self, session: Session, name: str) -> Room:
        """The room ``name`` if the session has joined it; else 404 or 403."""
        channel = room_to_channel(name)
        if channel is None:
            raise ApiError(404, "no_such_room", f"No such room: {name[:60]!r}")
        room = self.hub.find_room(channel)
        if room is None:
            raise ApiError(404, "no_such_room", f"No such room: {name}")
        if session.user.key not in room.members:
            raise ApiError(403, "not_joined", f"Join {name} first")
        return room

    def end_session(self, session: Session, reason: str, now: float) -> None:
        """Forget the session: the user quits (rooms see ``reason``), open holds end."""
        if self.sessions.pop(session.token, None) is None:
            return
        self.stats.sessions_open -= 1
        self.hub.quit(session.user, reason, now)
        for held in list(session.holds):
            held.end()

    def sweep(self, now: float) -> None:
        """Expire sessions without a request for ``session_timeout`` and nothing held open."""
        timeout = self.config.session_timeout
        if timeout <= 0:
            return
        cutoff = now - timeout
        for session in [s for s in self.sessions.values()
                        if s.last_seen < cutoff and not s.holds]:
            log.info("session of %s expired", session.user.nick)
            self.stats.reaps["session_timeout"] += 1
            self.end_session(session, "Session timeout", now)

    # --- public routes ---------------------------------------------------------------------
    def get_healthz(self, request: Request, arg: str, now: float) -> Reply:
        return 200, _HEALTHY, b""

    def get_stats(self, request: Request, arg: str, now: float) -> Reply:
        hub = self.hub
        snapshot = self.app.stats.snapshot(now)
        snapshot["hub"] = {"users": len(hub.users), "rooms": len(hub.rooms),
                           "events": hub.seq, "messages": dict(hub.messages),
                           "sessions": len(self.sessions)}
        return 200, json_body(snapshot), b""

    def post_sessions(self, request: Request, arg: str, now: float) -> Reply:
        nick = self._string(self._body(request), "nick")
        user = self.hub.register(nick, nick, "http", nick, "http", None, now)
        token = secrets.token_urlsafe(24)
        self.sessions[token] = Session(token, user, now, max(1, self.config.http_burst))
        self.stats.sessions_created += 1
        self.stats.sessions_open += 1
        return 201, json_body({"token": token, "nick": user.nick,
                                      "epoch": self.hub.epoch}), b""

    # --- session routes --------------------------------------------------------------------
    def get_session_me(self, request: Request, conn: HttpConnection, session: Session,
                       arg: str, query: dict[str, str], now: float) -> Reply:
        user = session.user
        return 200, json_body({"nick": user.nick, "rooms": sorted(
            channel_to_room(r.name) for r in user.rooms.values())}), b""

    def delete_session_me(self, request: Request, conn: HttpConnection, session: Session,
                          arg: str, query: dict[str, str], now: float) -> Reply:
        reason = self._string(self._body(request, required=False), "reason", "Client quit")
        self.end_session(session, reason or "Client quit", now)
        return 204, b"", b""

    def get_rooms(self, request: Request, conn: HttpConnection, session: Session,
                  arg: str, query: dict[str, str], now: float) -> Reply:
        rooms = [{"room": channel_to_room(r.name), "members": len(r.members), "topic": r.topic}
                 for r in self.hub.iter_rooms() if room_to_channel(r.name[1:]) == r.name]
        return 200, json_body({"rooms": rooms}), b""

    def post_join(self, request: Request, conn: HttpConnection, session: Session,
                  arg: str, query: dict[str, str], now: float) -> Reply:
        channel = room_to_channel(arg)
        if channel is None:
            raise ApiError(400, "room_invalid",
                           "Room names are 1 to 50 of A-Z a-z 0-9 _ -")
        room, _event = self.hub.join(session.user, channel, now)
        return 200, json_body({
            "room": channel_to_room(room.name), "members": [u.nick for u in room.members.values()],
            "last_id": room.log.last_id, "topic": room.topic,
            "epoch": self.hub.epoch}), b""

    def post_part(self, request: Request, conn: HttpConnection, session: Session,
                  arg: str, query: dict[str, str], now: float) -> Reply:
        reason = self._string(self._body(request, required=False), "reason", "")
        room = self._joined_room(session, arg)
        self.hub.part(session.user, room.name, reason, now)
        for held in [h for h in session.holds if h.log is room.log]:
            held.end()
        return 204, b"", b""

    def get_room_messages(self, request: Request, conn: HttpConnection, session: Session,
                          arg: str, query: dict[str, str], now: float) -> Reply | None:
        return self._poll(request, conn, session, self._joined_room(session, arg).log, query)

    def post_room_messages(self, request: Request, conn: HttpConnection, session: Session,
                           arg: str, query: dict[str, str], now: float) -> Reply:
        body = self._body(request)
        room = self._joined_room(session, arg)
        text = self._text(body, session, room.name)
        event = self.hub.say(session.user, room.name, text, now)
        session.user.last_active = now
        self.stats.messages += 1
        return 201, json_body({"id": event.id, "ts": event.ts}), b""

    def get_room_events(self, request: Request, conn: HttpConnection, session: Session,
                        arg: str, query: dict[str, str], now: float) -> None:
        self._stream(request, conn, session, self._joined_room(session, arg).log, query)

    def get_room_members(self, request: Request, conn: HttpConnection, session: Session,
                         arg: str, query: dict[str, str], now: float) -> Reply:
        channel = room_to_channel(arg)
        room = self.hub.find_room(channel) if channel is not None else None
        if room is None:
            raise ApiError(404, "no_such_room", f"No such room: {arg[:60]!r}")
        members = [{"nick": u.nick, "transport": u.transport,
                    "idle_s": round(max(0.0, now - u.last_active), 1)}
                   for u in room.members.values()]
        return 200, json_body({"room": channel_to_room(room.name), "members": members}), b""

    def post_user_messages(self, request: Request, conn: HttpConnection, session: Session,
                           arg: str, query: dict[str, str], now: float) -> Reply:
        body = self._body(request)
        target = self.hub.find_user(arg)
        if target is None:
            raise ApiError(404, "no_such_nick", f"No such nick: {arg[:60]!r}")
        text = self._text(body, session, target.nick)
        event = self.hub.tell(session.user, target.nick, text, now)
        session.user.last_active = now
        self.stats.messages += 1
        return 201, json_body({"id": event.id, "ts": event.ts}), b""

    def get_me_messages(self, request: Request, conn: HttpConnection, session: Session,
                        arg: str, query: dict[str, str], now: float) -> Reply | None:
        return self._poll(request, conn, session, session.user.inbox, query)

    def get_me_events(self, request: Request, conn: HttpConnection, session: Session,
                      arg: str, query: dict[str, str], now: float) -> None:
        self._stream(request, conn, session, session.user.inbox, query)


PUBLIC: dict[str, dict[str, PublicHandler]] = {
    "healthz": {"GET": Api.get_healthz, "HEAD": Api.get_healthz},
    "stats": {"GET": Api.get_stats, "HEAD": Api.get_stats},
    "sessions": {"POST": Api.post_sessions},
}

ROUTES: dict[str, dict[str, Handler]] = {
    "session_me": {"GET": Api.get_session_me, "HEAD": Api.get_session_me,
                   "DELETE": Api.delete_session_me},
    "rooms": {"GET": Api.get_rooms, "HEAD": Api.get_rooms},
    "room_join": {"POST": Api.post_join},
    "room_part": {"POST": Api.post_part},
    "room_messages": {"GET": Api.get_room_messages, "HEAD": Api.get_room_messages,
                      "POST": Api.post_room_messages},
    "room_events": {"GET": Api.get_room_events, "HEAD": Api.get_room_events},
    "room_members": {"GET": Api.get_room_members, "HEAD": Api.get_room_members},
    "user_messages": {"POST": Api.post_user_messages},
    "me_messages": {"GET": Api.get_me_messages, "HEAD": Api.get_me_messages},
    "me_events": {"GET": Api.get_me_events, "HEAD": Api.get_me_events},
}
