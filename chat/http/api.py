"""The JSON API: routes -> engine calls, JSON in and out (pure: no sockets, no clock).

:meth:`Api.handle` takes one parsed :class:`~chat.http.wire.Request` and the current
:class:`~chat.core.clock.Now` and returns an :mod:`~chat.http.answers` value: a reply, a
long poll to hold, a stream to open, or a reply that waits for the engine.  It never
writes anything and never raises; every error is JSON ``{"error", "message"}``.

HTTP users are hub users with transport ``"http"``, no sink, user and host ``nick@http``
(IRC sees ``nick!nick@http``).  Sessions live in :mod:`chat.http.sessions`; the adapter's
housekeeping tick calls :meth:`Api.sweep` to expire the idle ones with a QUIT
``Session timeout``; an open long poll or stream counts as activity.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import unquote

import orjson

from ..core.clock import Now
from ..core.errors import HubError
from ..core.events import Event
from ..core.hub import EventLog, Room
from ..core.names import channel_to_room, room_to_channel
from ..core.pending import Pending
from ..state import ServerState
from .answers import Answer, ApiError, Later, Reply, StreamEvents, WaitForEvents
from .roomops import (
    client_tags,
    get_mode,
    post_invite,
    post_kick,
    post_mode,
    post_room_typing,
    post_user_typing,
)
from .sessions import HttpSession, SessionTable, new_token, token_hash
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

log = logging.getLogger(__name__)

T = TypeVar("T")
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
IRC_LINE = 510  # bytes of an IRC line without CR LF: a relayed message must fit in one

# One table from hub error codes (chat.core.errors) to HTTP statuses.
HUB_STATUS = {"nick_invalid": 400, "nick_in_use": 409, "no_such_nick": 404,
              "channel_invalid": 400, "no_such_channel": 404, "not_on_channel": 403,
              "cannot_send": 403, "too_many_channels": 403, "not_chanop": 403,
              "engine_unavailable": 503,
              # running a room (chat.http.roomops)
              "user_not_in_channel": 404, "user_on_channel": 409, "channel_full": 403,
              "invite_only": 403, "banned": 403, "bad_key": 403, "unknown_mode": 400,
              "invalid_mode_param": 400, "list_full": 409}

# Refusals that a node lagging behind another node's writes could give wrongly.
LAG_STATUSES = frozenset({401, 403, 404})
LAG_CODES = frozenset({"no_such_nick", "no_such_channel", "not_on_channel", "cannot_send"})

_HEALTHY = json_body({"status": "ok"})
_UNAUTHORIZED = b"www-authenticate: Bearer\r\n"
_NO_CONTENT = Reply(204, b"")


Handler = Callable[["Api", Request, HttpSession, str, dict[str, str], Now], Answer]
PublicHandler = Callable[["Api", Request, str, Now], Answer]


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
        case ["", "api", "rooms", room, "topic"]:
            return "room_topic", room
        case ["", "api", "rooms", room, ("mode" | "kick" | "invite" | "typing") as what]:
            return f"room_{what}", room
        case ["", "api", "users", nick, "typing"]:
            return "user_typing", nick
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
    """Routes and sessions of the HTTP side of one server."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.engine = state.engine
        self.config = cfg = state.config
        self.stats = state.stats.http
        self.sessions = SessionTable(cfg.http_rate, cfg.http_burst, cfg.session_timeout)
        self._empty: dict[int, bytes] = {}  # pre-encoded empty poll bodies by cursor
        self._last_sweep = state.mono()

    # --- dispatch ------------------------------------------------------------------------------
    def handle(self, request: Request, now: Now, synced: bool = False) -> Answer:
        """Answer ``request``; never raises.

        With an engine shared by several nodes this node's view may lag a write made
        through another one (a session created there, a room joined there): a refusal
        that such a lag could explain waits until this node has caught up, then the
        request is answered again, once.
        """
        try:
            return self._dispatch(request, now)
        except ApiError as exc:
            if exc.status in LAG_STATUSES and not synced and self.engine.replicated:
                return self._after_sync(request, now)
            return self.error(exc.status, exc.code, exc.message, exc.extra)
        except HubError as exc:
            if not synced and self.engine.replicated and exc.code in LAG_CODES:
                return self._after_sync(request, now)
            return self.hub_error(exc)
        except Exception:
            log.exception("error answering %r", request)
            return self.error(500, "internal", "Internal server error")

    def _after_sync(self, request: Request, now: Now) -> Answer:
        return Later(self.engine.sync(), lambda _: self.handle(request, now, synced=True),
                     self.hub_error)

    def error(self, status: int, code: str, message: str, extra: bytes = b"") -> Reply:
        self.stats.errors[code] += 1
        return Reply(status, error_body(code, message), extra)

    def hub_error(self, exc: HubError) -> Reply:
        return self.error(HUB_STATUS.get(exc.code, 400), exc.code, exc.message)

    def _dispatch(self, request: Request, now: Now) -> Answer:
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
            return public(self, request, arg, now)
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
        session = self._authenticate(request, query, now.mono)
        return handler(self, request, session, arg, query, now)

    @staticmethod
    def _not_allowed(methods: dict[str, Any]) -> ApiError:
        allow = ", ".join(sorted(methods))
        return ApiError(405, "method_not_allowed", f"Allowed methods: {allow}",
                        b"allow: %s\r\n" % allow.encode("ascii"))

    def _authenticate(self, request: Request, query: dict[str, str],
                      mono: float) -> HttpSession:
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
        session = self._session(token, mono)
        if session is None:
            raise ApiError(401, "unauthorized", "Unknown or expired session token",
                           _UNAUTHORIZED)
        retry = self.sessions.charge(session, mono)
        if retry is not None:
            rate = self.config.http_rate
            raise ApiError(429, "rate_limited",
                           f"Over the budget of {rate:g} requests/s; retry in {retry} s",
                           b"retry-after: %d\r\n" % retry)
        return session

    def _session(self, token: str, mono: float) -> HttpSession | None:
        """The session of ``token`` if its user still exists (it may have been made on
        another node, or ended there)."""
        session = self.sessions.get(token)
        if session is not None:
            if self.engine.find_user(session.user.nick) is session.user:
                return session
            self._forget(session)
            return None
        user = self.engine.user_of_token(token_hash(token))
        return self.sessions.create(token, user, mono) if user is not None else None

    def _forget(self, session: HttpSession) -> None:
        """The session's user is gone (it ended on another node): drop it here too."""
        if self.sessions.remove(session):
            session.end_holds()

    def _settle(self, pending: Pending[T], then: Callable[[T], Reply]) -> Answer:
        """``then(value)`` now if the engine has answered, else a Later for the adapter."""
        if not pending.done:
            return Later(pending, then, self.hub_error)
        if pending.error is not None:
            return self.hub_error(pending.error)
        return then(pending.result())

    # --- what held requests ask ---------------------------------------------------------------
    def poll_answer(self, events: list[Event], next_id: int, gap: bool) -> bytes:
        """Body of a poll answer, counted; empty answers come pre-encoded by cursor."""
        stats = self.stats
        stats.polls += 1
        epoch = self.engine.epoch
        if events:
            stats.deliveries += len(events)
            return poll_body(events, next_id, gap, epoch)
        stats.empty_polls += 1
        if gap:
            return poll_body(events, next_id, gap, epoch)
        body = self._empty.get(next_id)
        if body is None:
            if len(self._empty) >= 4096:  # bounded: cursors of rooms that moved on
                self._empty.clear()
            body = self._empty[next_id] = poll_body(events, next_id, False, epoch)
        return body

    def end_session(self, session: HttpSession, reason: str, now: Now) -> None:
        """Forget the session: the user quits (rooms see ``reason``), open holds end."""
        if not self.sessions.remove(session):
            return
        self.stats.sessions_open -= 1
        self.engine.quit(session.user, reason, now.wall)
        session.end_holds()

    def sweep(self, now: Now) -> None:
        """Expire sessions without a request for ``session_timeout`` and nothing held open.

        With an engine shared by several nodes the engine decides (a session may be busy
        on another node): this node tells it which sessions were active here, and forgets
        those whose user has gone.
        """
        if not self.engine.local_session_expiry:
            self.engine.sessions_seen(
                s.user.key for s in self.sessions.active_since(self._last_sweep))
            self._last_sweep = now.mono
            for session in list(self.sessions.by_token.values()):
                if self.engine.find_user(session.user.nick) is not session.user:
                    self._forget(session)
            return
        expired = self.sessions.expired(now.mono)
        if len(expired) > 10:  # a mass expiry gets one line, not one per session
            log.info("%d sessions expired", len(expired))
        for session in expired:
            if len(expired) <= 10:
                log.info("session of %s expired", session.user.nick)
            self.stats.reaps["session_timeout"] += 1
            self.end_session(session, "Session timeout", now)

    # --- request parts -------------------------------------------------------------------------
    def _poll(self, request: Request, session: HttpSession, log: EventLog,
              query: dict[str, str]) -> Answer:
        try:
            since = opt_int_param(query, "since")
            limit = min(int_param(query, "limit", DEFAULT_LIMIT, minimum=1), MAX_LIMIT)
            wait = min(float_param(query, "wait", 0.0), self.config.max_wait)
        except BadParam as exc:
            raise ApiError(400, "bad_parameter", str(exc)) from None
        events, next_id, gap = log.since(since, limit)
        if events or gap or wait <= 0 or request.method == "HEAD":
            return Reply(200, self.poll_answer(events, next_id, gap))
        return WaitForEvents(session, log, next_id, limit, wait)

    def _stream(self, request: Request, session: HttpSession, log: EventLog,
                query: dict[str, str]) -> Answer:
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
            return Reply(200, b"", content_type=SSE_TYPE)
        return StreamEvents(session, log, since)

    @staticmethod
    def _body(request: Request, required: bool = True) -> dict[str, Any]:
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
        if value is None:
            raise ApiError(400, "bad_request", f"'{name}' is missing")
        if not isinstance(value, str):
            raise ApiError(400, "bad_request", f"'{name}' must be a string")
        if "\r" in value or "\n" in value or "\0" in value:
            raise ApiError(400, "bad_request", f"'{name}' must be one line (no CR, LF or NUL)")
        return value

    def _text(self, body: dict[str, Any], session: HttpSession, target: str) -> str:
        """The message text: one non-empty line that fits one relayed IRC PRIVMSG."""
        text = self._string(body, "text")
        if not text:
            raise ApiError(400, "bad_request", "'text' must not be empty")
        room = IRC_LINE - len(f":{session.user.prefix} PRIVMSG {target} :".encode())
        if len(text.encode()) > room:
            raise ApiError(400, "text_too_long", f"Text longer than {room} bytes (UTF-8)")
        return text

    def _room(self, name: str) -> Room:
        """The room ``name`` (404 if there is none)."""
        channel = room_to_channel(name)
        room = self.engine.find_room(channel) if channel is not None else None
        if room is None:
            raise ApiError(404, "no_such_room", f"No such room: {name[:60]!r}")
        return room

    def _joined_room(self, session: HttpSession, name: str) -> Room:
        """The room ``name`` if the session has joined it; else 404 or 403."""
        room = self._room(name)
        if session.user.key not in room.members:
            raise ApiError(403, "not_joined", f"Join {name} first")
        return room

    def _sent(self, event: Event) -> Reply:
        self.stats.messages += 1
        return Reply(201, json_body({"id": event.id, "ts": event.ts}))

    # --- public routes ---------------------------------------------------------------------
    def get_healthz(self, request: Request, arg: str, now: Now) -> Answer:
        return Reply(200, _HEALTHY)

    def get_stats(self, request: Request, arg: str, now: Now) -> Answer:
        snapshot = self.state.stats.snapshot(self.state.uptime())
        hub = self.engine.snapshot()
        hub["sessions"] = len(self.sessions)
        snapshot["hub"] = hub
        return Reply(200, json_body(snapshot))

    def post_sessions(self, request: Request, arg: str, now: Now) -> Answer:
        nick = self._string(self._body(request), "nick")
        token = new_token()
        return self._settle(self.engine.register(nick, nick, "http", nick, "http", None,
                                                 now.wall, token_hash(token)),
                            lambda user: self._session_created(token, user, now))

    def _session_created(self, token: str, user: Any, now: Now) -> Reply:
        session = self.sessions.create(token, user, now.mono)
        self.stats.sessions_created += 1
        self.stats.sessions_open += 1
        return Reply(201, json_body({"token": session.token, "nick": user.nick,
                                     "epoch": self.engine.epoch}))

    # --- session routes --------------------------------------------------------------------
    def get_session_me(self, request: Request, session: HttpSession, arg: str,
                       query: dict[str, str], now: Now) -> Answer:
        user = session.user
        return Reply(200, json_body({"nick": user.nick, "rooms": sorted(
            channel_to_room(r.name) for r in user.rooms.values())}))

    def delete_session_me(self, request: Request, session: HttpSession, arg: str,
                          query: dict[str, str], now: Now) -> Answer:
        reason = self._string(self._body(request, required=False), "reason", "Client quit")
        self.end_session(session, reason or "Client quit", now)
        return _NO_CONTENT

    def get_rooms(self, request: Request, session: HttpSession, arg: str,
                  query: dict[str, str], now: Now) -> Answer:
        key = session.user.key
        rooms = [{"room": channel_to_room(r.name), "members": len(r.members), "topic": r.topic}
                 for r in self.engine.rooms() if room_to_channel(r.name[1:]) == r.name
                 and (not r.secret or key in r.members)]
        return Reply(200, json_body({"rooms": rooms}))

    def post_join(self, request: Request, session: HttpSession, arg: str,
                  query: dict[str, str], now: Now) -> Answer:
        channel = room_to_channel(arg)
        if channel is None:
            raise ApiError(400, "room_invalid",
                           "Room names are 1 to 50 of A-Z a-z 0-9 _ -")
        key = self._string(self._body(request, required=False), "key", "")  # for +k rooms
        return self._settle(self.engine.join(session.user, channel, now.wall, key),
                            lambda joined: self._joined(joined.room))

    def _joined(self, room: Room) -> Reply:
        return Reply(200, json_body({
            "room": channel_to_room(room.name), "members": [u.nick for u in room.members.values()],
            "last_id": room.log.last_id, "topic": room.topic, "epoch": self.engine.epoch}))

    def post_part(self, request: Request, session: HttpSession, arg: str,
                  query: dict[str, str], now: Now) -> Answer:
        reason = self._string(self._body(request, required=False), "reason", "")
        room = self._joined_room(session, arg)
        log = room.log
        return self._settle(self.engine.part(session.user, room.name, reason, now.wall),
                            lambda _event: self._parted(session, log))

    def _parted(self, session: HttpSession, log: EventLog) -> Reply:
        for held in [h for h in session.holds if h.log is log]:
            held.end()
        return _NO_CONTENT

    def post_topic(self, request: Request, session: HttpSession, arg: str,
                   query: dict[str, str], now: Now) -> Answer:
        topic = self._string(self._body(request), "topic")
        room = self._joined_room(session, arg)
        return self._settle(self.engine.set_topic(session.user, room.name, topic, now.wall),
                            lambda event: Reply(200, json_body({
                                "room": arg, "topic": event.text, "by": event.nick,
                                "id": event.id})))

    def get_room_messages(self, request: Request, session: HttpSession, arg: str,
                          query: dict[str, str], now: Now) -> Answer:
        return self._poll(request, session, self._joined_room(session, arg).log, query)

    def post_room_messages(self, request: Request, session: HttpSession, arg: str,
                           query: dict[str, str], now: Now) -> Answer:
        body = self._body(request)
        room = self._joined_room(session, arg)
        text = self._text(body, session, room.name)
        tags = client_tags(body)
        return self._settle(self.engine.say(session.user, room.name, text, now.wall,
                                            tags=tags), self._sent)

    def get_room_events(self, request: Request, session: HttpSession, arg: str,
                        query: dict[str, str], now: Now) -> Answer:
        return self._stream(request, session, self._joined_room(session, arg).log, query)

    def get_room_members(self, request: Request, session: HttpSession, arg: str,
                         query: dict[str, str], now: Now) -> Answer:
        room = self._room(arg)
        if room.secret and session.user.key not in room.members:
            raise ApiError(404, "no_such_room", f"No such room: {arg[:60]!r}")
        members = [{"nick": u.nick, "transport": u.transport, "op": room.is_op(u),
                    "voice": room.is_voiced(u), "away": u.away,
                    "idle_s": round(max(0.0, now.wall - u.last_active), 1)}
                   for u in room.members.values()]
        return Reply(200, json_body({"room": channel_to_room(room.name), "members": members}))

    def post_user_messages(self, request: Request, session: HttpSession, arg: str,
                           query: dict[str, str], now: Now) -> Answer:
        body = self._body(request)
        target = self.engine.find_user(arg)
        if target is None:
            raise ApiError(404, "no_such_nick", f"No such nick: {arg[:60]!r}")
        text = self._text(body, session, target.nick)
        tags = client_tags(body)
        return self._settle(self.engine.tell(session.user, target.nick, text, now.wall,
                                             tags=tags), self._sent)

    def get_me_messages(self, request: Request, session: HttpSession, arg: str,
                        query: dict[str, str], now: Now) -> Answer:
        return self._poll(request, session, session.user.inbox, query)

    def get_me_events(self, request: Request, session: HttpSession, arg: str,
                      query: dict[str, str], now: Now) -> Answer:
        return self._stream(request, session, session.user.inbox, query)


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
    "room_topic": {"POST": Api.post_topic},
    "room_messages": {"GET": Api.get_room_messages, "HEAD": Api.get_room_messages,
                      "POST": Api.post_room_messages},
    "room_events": {"GET": Api.get_room_events, "HEAD": Api.get_room_events},
    "room_members": {"GET": Api.get_room_members, "HEAD": Api.get_room_members},
    "user_messages": {"POST": Api.post_user_messages},
    "me_messages": {"GET": Api.get_me_messages, "HEAD": Api.get_me_messages},
    "me_events": {"GET": Api.get_me_events, "HEAD": Api.get_me_events},
    # running a room, typing notices (chat.http.roomops)
    "room_mode": {"GET": get_mode, "HEAD": get_mode, "POST": post_mode},
    "room_kick": {"POST": post_kick},
    "room_invite": {"POST": post_invite},
    "room_typing": {"POST": post_room_typing},
    "user_typing": {"POST": post_user_typing},
}
