"""The JSON API: routes -> engine calls, JSON in and out (pure: no sockets, no clock).

:meth:`Api.handle` takes one parsed :class:`~chat.http.wire.Request` and the current
:class:`~chat.core.clock.Now` and returns an :mod:`~chat.http.answers` value: a reply, a
long poll to hold, a stream to open, or a reply that waits for the engine.  It never
writes anything and never raises; every error is JSON ``{"error", "message"}``.

HTTP users are hub users with transport ``"http"``, no sink, user and host ``nick@http``
(IRC sees ``nick!nick@http``); a WebSocket or a UDP registration attached to a session
makes itself the user's sink (a UDP registration also gets the user's own room events, its
``echo``).  Sessions live in :mod:`chat.http.sessions`; the adapter's housekeeping tick
calls :meth:`Api.sweep` to expire the idle ones with a QUIT ``Session timeout``; an open
long poll, stream, WebSocket or UDP registration counts as activity.  Each session's
:class:`~.sessions.Meter` is charged here (requests, empty answers); the adapter adds
bytes and connections.

Besides the API it serves the page (``/``, ``/static/<file>``), the OpenAPI description
(``/api/openapi.json``) and answers ``OPTIONS`` (CORS preflights, :mod:`chat.http.cors`).
Every route's path template is in :data:`ROUTE_PATHS`, which the OpenAPI description and
its test are checked against.
"""

from __future__ import annotations

import hmac
import logging
import math
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
from ..logs import disconnect
from ..state import ServerState
from .answers import Answer, Later, Reply, StreamEvents, SwitchProtocols, WaitForEvents
from .cors import Cors, HostCheck
from .inputs import (
    HUB_STATUS,
    ApiError,
    client_tags,
    find_room,
    hub_message,
    joined_room,
    member_nicks,
    members_of,
    message_text,
    reason_field,
    room_channel,
    string_field,
)
from .metrics import CONTENT_TYPE as METRICS_TYPE
from .metrics import Metrics
from .openapi import describe
from .roomops import (
    get_mode,
    post_invite,
    post_kick,
    post_mode,
    post_room_typing,
    post_user_typing,
)
from .routes import ROUTE_PATHS, route_of
from .sessions import CreationBudget, HttpSession, Meter, SessionTable, new_token, token_hash
from .static import SECURITY, StaticFiles
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
    strict_int,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
UNMETERED = frozenset({"session_me"})  # reading the meter does not move it
NOT_A_REQUEST = frozenset({"ws"})      # a WebSocket's handshake opens it; frames are not requests
# Where ?token= is accepted: what a browser opens without a way to set a header
# (EventSource, WebSocket).  Anywhere else a token in the URL would end up in logs and
# histories for nothing.
QUERY_TOKEN = frozenset({"room_events", "me_events", "ws"})
# Served whatever the Host: probes and scrapers name the server by its address.
ANY_HOST = frozenset({"healthz", "readyz", "metrics"})

# Refusals that a node lagging behind another node's writes could give wrongly.
LAG_STATUSES = frozenset({401, 403, 404})
LAG_CODES = frozenset({"no_such_nick", "no_such_channel", "not_on_channel", "cannot_send"})

_HEALTHY = json_body({"status": "ok"})
_READY = json_body({"status": "ready", "accepting": True})
_UNAUTHORIZED = b"www-authenticate: Bearer\r\n"
_NO_CONTENT = Reply(204, b"")

__all__ = ["HUB_STATUS", "PUBLIC", "ROUTES", "ROUTE_PATHS", "Api", "ApiError"]


Handler = Callable[["Api", Request, HttpSession, str, dict[str, str], Now], Answer]
PublicHandler = Callable[["Api", Request, str, Now], Answer]


class Api:
    """Routes and sessions of the HTTP side of one server."""

    def __init__(self, state: ServerState, static: StaticFiles | None = None) -> None:
        self.state = state
        self.engine = state.engine
        self.config = cfg = state.config
        self.stats = state.stats.http
        self.sessions = SessionTable(cfg.http_rate, cfg.http_burst, cfg.session_timeout)
        self.creations = CreationBudget(cfg.session_rate, cfg.session_burst)
        self.static = static or StaticFiles({})
        self.cors = Cors(cfg.cors_origin)
        self.hosts = HostCheck(cfg.allowed_host, cfg.host)
        self.metrics = Metrics(state.stats, self._hub_figures, state.uptime)
        self._empty: dict[int, bytes] = {}  # pre-encoded empty poll bodies by cursor
        self._last_sweep = state.mono()
        self._openapi: bytes | None = None

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
        status = HUB_STATUS.get(exc.code, 400)
        return self.error(status, exc.code, hub_message(exc),
                          b"retry-after: 1\r\n" if status == 503 else b"")

    def _dispatch(self, request: Request, now: Now) -> Answer:
        url = request.url.decode("latin-1")
        path, _, query_string = url.partition("?")
        parts = path.split("/")
        if "%" in path:
            try:
                parts = [unquote(p, errors="strict") for p in parts]
            except UnicodeDecodeError:
                raise ApiError(400, "bad_request", "Path is not valid UTF-8") from None
        route, arg = route_of(parts)
        if route not in ANY_HOST and not self.hosts.allowed(request.host):
            raise ApiError(421, "host_not_allowed",
                           "This server does not answer for that Host (see --allowed-host)")
        method = request.method
        try:
            query = parse_query(query_string) if query_string else {}
        except UnicodeDecodeError:
            raise ApiError(400, "bad_request", "Query string is not valid UTF-8") from None
        if query.get("close") == "1":  # a browser cannot send Connection: close itself
            request.keep_alive = False
        methods: dict[str, Any] | None = PUBLIC.get(route) or ROUTES.get(route)
        if methods is None:
            raise ApiError(404, "not_found", f"No such path: {path[:200]}")
        if method == "OPTIONS":
            return self._options(request, methods)
        if route in PUBLIC:
            public = PUBLIC[route].get(method)
            if public is None:
                raise self._not_allowed(PUBLIC[route])
            return public(self, request, arg, now)
        handler = ROUTES[route].get(method)
        if handler is None:
            raise self._not_allowed(ROUTES[route])
        session = self._authenticate(request, query if route in QUERY_TOKEN else {}, now.mono)
        if route not in UNMETERED:
            request.meter = session.meter
            if route not in NOT_A_REQUEST:
                session.meter.requests += 1
        return handler(self, request, session, arg, query, now)

    def _options(self, request: Request, methods: dict[str, Any]) -> Reply:
        """``OPTIONS``: a CORS preflight (204 or 403), or just the ``Allow`` list (204)."""
        allow = sorted(methods) + ["OPTIONS"]
        if request.origin is None or request.preflight is None:
            return Reply(204, b"", b"allow: %s\r\n" % ", ".join(allow).encode("ascii"))
        if not self.cors.allowed(request.origin):
            raise ApiError(403, "origin_not_allowed",
                           "This origin may not use the API (see --cors-origin)")
        if request.preflight.decode("latin-1") not in methods:
            raise self._not_allowed(methods)
        return Reply(204, b"", self.cors.preflight_headers(request.origin, allow))

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
                               "A session token is required: Authorization: Bearer (?token= "
                               "only for event streams and the WebSocket)", _UNAUTHORIZED)
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

    def session_of(self, token: str, mono: float) -> HttpSession | None:
        """The live session of ``token`` (for another transport's authentication: a UDP
        registration), without charging a request."""
        return self._session(token, mono)

    @staticmethod
    def _echo(session: HttpSession, event: Event | None) -> None:
        """Hand the user's own room event to whoever asked for it (a UDP registration)."""
        if event is not None and session.echo is not None:
            session.echo(event)

    def _forget(self, session: HttpSession) -> None:
        """The session's user is gone (killed, or ended on another node): drop it here too."""
        if self.sessions.remove(session):
            nick = session.user.nick
            log.info("session of %s ended elsewhere", nick,
                     extra=disconnect("http", "", nick, "Removed elsewhere", "dropped"))
            session.end_holds()

    def _settle(self, pending: Pending[T], then: Callable[[T], Reply]) -> Answer:
        """``then(value)`` now if the engine has answered, else a Later for the adapter."""
        if not pending.done:
            return Later(pending, then, self.hub_error)
        if pending.error is not None:
            return self.hub_error(pending.error)
        return then(pending.result())

    # --- what held requests ask ---------------------------------------------------------------
    def poll_answer(self, events: list[Event], next_id: int, gap: bool,
                    meter: Meter | None = None) -> bytes:
        """Body of a poll answer, counted; empty answers come pre-encoded by cursor."""
        stats = self.stats
        stats.polls += 1
        epoch = self.engine.epoch
        if events:
            stats.deliveries += len(events)
            return poll_body(events, next_id, gap, epoch)
        stats.empty_polls += 1
        if meter is not None:
            meter.empty += 1
        if gap:
            return poll_body(events, next_id, gap, epoch)
        body = self._empty.get(next_id)
        if body is None:
            if len(self._empty) >= 4096:  # bounded: cursors of rooms that moved on
                self._empty.clear()
            body = self._empty[next_id] = poll_body(events, next_id, False, epoch)
        return body

    def end_session(self, session: HttpSession, reason: str, now: Now) -> None:
        """Forget the session: open holds end (a WebSocket with "Session ended"), then the
        user quits (rooms see ``reason``)."""
        if not self.sessions.remove(session):
            return
        self.stats.sessions_open -= 1
        session.end_holds()
        self.engine.quit(session.user, reason, now.wall)

    def sweep(self, now: Now) -> int:
        """Expire sessions without a request for ``session_timeout`` and nothing held open;
        how many expired (the adapter gives memory back after a mass expiry).

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
            self.sessions.compact()
            return 0
        self.creations.prune(now.mono)
        expired = self.sessions.expired(now.mono)
        if len(expired) > 10:  # a mass expiry gets one line, not one per session
            log.info("%d sessions expired", len(expired))
        for session in expired:
            if len(expired) <= 10:
                nick = session.user.nick
                log.info("session of %s expired", nick,
                         extra=disconnect("http", "", nick, "Session timeout",
                                          "session_timeout"))
            self.stats.reaps["session_timeout"] += 1
            self.end_session(session, "Session timeout", now)
        if expired:
            self.sessions.compact()
        return len(expired)

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
            return Reply(200, self.poll_answer(events, next_id, gap, session.meter))
        return WaitForEvents(session, log, next_id, limit, wait)

    def _stream(self, request: Request, session: HttpSession, log: EventLog,
                query: dict[str, str]) -> Answer:
        try:
            if request.last_event_id is not None:  # a reconnecting EventSource: resume
                since: int | None = strict_int(request.last_event_id.strip())
                if since is None:
                    raise ValueError(request.last_event_id)
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

    def _sent(self, event: Event) -> Reply:
        self.stats.messages += 1
        return Reply(201, json_body({"id": event.id, "ts": event.ts}))

    # --- public routes ---------------------------------------------------------------------
    def get_healthz(self, request: Request, arg: str, now: Now) -> Answer:
        return Reply(200, _HEALTHY)

    def get_readyz(self, request: Request, arg: str, now: Now) -> Answer:
        """Ready = accepting new clients: 503 while draining or at --max-clients."""
        admission = self.state.admission
        if self.state.draining:
            reason = "draining"
        elif admission.open >= admission.max_clients:
            reason = "full"
        else:
            return Reply(200, _READY)
        return Reply(503, json_body({"status": "not_ready", "accepting": False,
                                     "reason": reason}), b"retry-after: 1\r\n")

    def get_metrics(self, request: Request, arg: str, now: Now) -> Answer:
        return Reply(200, self.metrics.render(), content_type=METRICS_TYPE)

    def get_stats(self, request: Request, arg: str, now: Now) -> Answer:
        snapshot = self.state.stats.snapshot(self.state.uptime())
        hub = self.engine.snapshot()
        hub["sessions"] = len(self.sessions)
        snapshot["hub"] = hub
        return Reply(200, json_body(snapshot))

    def _hub_figures(self) -> dict[str, Any]:
        return self.engine.snapshot()

    def get_openapi(self, request: Request, arg: str, now: Now) -> Answer:
        if self._openapi is None:
            self._openapi = json_body(describe(ROUTE_PATHS, PUBLIC, ROUTES))
        return Reply(200, self._openapi)

    def get_static(self, request: Request, arg: str, now: Now) -> Answer:
        """A file of the page, with its security headers; 304 if the ETag still matches."""
        page = self.static.get(arg)
        if page is None:
            raise ApiError(404, "not_found", f"No such file: {arg[:60]!r}")
        headers = SECURITY + b"etag: %s\r\n" % page.etag
        if request.if_none_match == page.etag:
            return Reply(304, b"", headers, page.content_type)
        return Reply(200, page.body, headers, page.content_type)

    def post_sessions(self, request: Request, arg: str, now: Now) -> Answer:
        self._check_creation(request, now)
        body = self._body(request)
        self._check_password(body)
        nick = string_field(body, "nick")
        cfg = self.config
        if cfg.max_sessions and len(self.sessions) >= cfg.max_sessions:
            retry = max(1, math.ceil(cfg.session_timeout / 4)) if cfg.session_timeout else 60
            raise ApiError(503, "too_many_sessions",
                           f"The server holds its most sessions ({cfg.max_sessions}); "
                           f"retry in {retry} s", b"retry-after: %d\r\n" % retry)
        token = new_token()
        return self._settle(self.engine.register(nick, nick, "http", nick, "http", None,
                                                 now.wall, token_hash(token)),
                            lambda user: self._session_created(token, user, now))

    def _check_creation(self, request: Request, now: Now) -> None:
        """429 once the client's address is over its budget of new sessions (loopback and
        ``--per-ip-exempt`` networks are exempt).  Checked first, so that password
        guesses spend the same budget."""
        if self.state.exempt(request.ip):
            return
        retry = self.creations.charge(request.ip, now.mono)
        if retry is not None:
            rate = self.config.session_rate
            raise ApiError(429, "rate_limited",
                           f"Over the budget of {rate:g} new sessions/s from your address; "
                           f"retry in {retry} s", b"retry-after: %d\r\n" % retry)

    def _check_password(self, body: dict[str, Any]) -> None:
        """With ``--password`` a session needs it, as an IRC connection needs PASS: 401
        ``password_required`` without one, ``bad_password`` with a wrong one."""
        expected = self.config.password
        if expected is None:
            return
        given = body.get("password")
        if given is None:
            raise ApiError(401, "password_required",
                           "This server wants a password: send {\"nick\", \"password\"}")
        if not isinstance(given, str) or not hmac.compare_digest(
                given.encode(), expected.encode()):
            raise ApiError(401, "bad_password", "Wrong password")

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
            channel_to_room(r.name) for r in user.rooms),
            "counters": session.meter.snapshot()}))

    def delete_session_me(self, request: Request, session: HttpSession, arg: str,
                          query: dict[str, str], now: Now) -> Answer:
        reason = reason_field(self._body(request, required=False), "reason", "Client quit",
                              session.user, "QUIT")
        self.end_session(session, reason or "Client quit", now)
        return _NO_CONTENT

    def get_rooms(self, request: Request, session: HttpSession, arg: str,
                  query: dict[str, str], now: Now) -> Answer:
        key = session.user.key  # a secret (+s) room is listed to its members only
        rooms = [{"room": channel_to_room(r.name), "members": len(r.members), "topic": r.topic}
                 for r in self.engine.rooms() if room_to_channel(r.name[1:]) == r.name
                 and (not r.secret or key in r.members)]
        return Reply(200, json_body({"rooms": rooms}))

    def post_join(self, request: Request, session: HttpSession, arg: str,
                  query: dict[str, str], now: Now) -> Answer:
        channel = room_channel(arg)
        key = string_field(self._body(request, required=False), "key", "")  # for +k rooms

        def joined(result: Any) -> Reply:
            self._echo(session, result.event)
            return self._joined(result.room)

        return self._settle(self.engine.join(session.user, channel, now.wall, key), joined)

    def _joined(self, room: Room) -> Reply:
        return Reply(200, json_body({
            "room": channel_to_room(room.name),
            "members": member_nicks(room, self.config.join_members),
            "members_total": len(room.members), "last_id": room.log.last_id,
            "topic": room.topic, "epoch": self.engine.epoch}))

    def post_part(self, request: Request, session: HttpSession, arg: str,
                  query: dict[str, str], now: Now) -> Answer:
        room = joined_room(self.engine, session.user, arg)
        reason = reason_field(self._body(request, required=False), "reason", "", session.user,
                              "PART", room.name)
        log = room.log

        def parted(event: Event) -> Reply:
            self._echo(session, event)
            return self._parted(session, log)

        return self._settle(self.engine.part(session.user, room.name, reason, now.wall),
                            parted)

    def _parted(self, session: HttpSession, log: EventLog) -> Reply:
        for held in [h for h in session.holds if h.log is log]:
            held.end()
        return _NO_CONTENT

    def post_topic(self, request: Request, session: HttpSession, arg: str,
                   query: dict[str, str], now: Now) -> Answer:
        body = self._body(request)
        room = joined_room(self.engine, session.user, arg)
        topic = reason_field(body, "topic", "", session.user, "TOPIC", room.name)
        if "topic" not in body:
            raise ApiError(400, "bad_request", "'topic' is missing")

        def changed(event: Event) -> Reply:
            self._echo(session, event)
            return Reply(200, json_body({"room": arg, "topic": event.text, "by": event.nick,
                                         "id": event.id}))

        return self._settle(self.engine.set_topic(session.user, room.name, topic, now.wall),
                            changed)

    def get_room_messages(self, request: Request, session: HttpSession, arg: str,
                          query: dict[str, str], now: Now) -> Answer:
        room = joined_room(self.engine, session.user, arg)
        return self._poll(request, session, room.log, query)

    def post_room_messages(self, request: Request, session: HttpSession, arg: str,
                           query: dict[str, str], now: Now) -> Answer:
        body = self._body(request)
        room = joined_room(self.engine, session.user, arg)
        text = message_text(body, session.user, room.name)
        tags = client_tags(body)

        def sent(event: Event) -> Reply:
            self._echo(session, event)
            return self._sent(event)

        return self._settle(self.engine.say(session.user, room.name, text, now.wall,
                                            tags=tags), sent)

    def get_room_events(self, request: Request, session: HttpSession, arg: str,
                        query: dict[str, str], now: Now) -> Answer:
        room = joined_room(self.engine, session.user, arg)
        return self._stream(request, session, room.log, query)

    def get_room_members(self, request: Request, session: HttpSession, arg: str,
                         query: dict[str, str], now: Now) -> Answer:
        room = find_room(self.engine, arg)
        if room.secret and session.user.key not in room.members:
            raise ApiError(404, "no_such_room", f"No such room: {arg[:60]!r}")
        try:
            offset = int_param(query, "offset", 0)
            limit = int_param(query, "limit", self.config.join_members, minimum=1)
        except BadParam as exc:
            raise ApiError(400, "bad_parameter", str(exc)) from None
        members = members_of(room, now.wall, offset, limit)
        end = offset + len(members)
        return Reply(200, json_body({"room": channel_to_room(room.name), "members": members,
                                     "total": len(room.members),
                                     "next": end if end < len(room.members) else None}))

    def post_user_messages(self, request: Request, session: HttpSession, arg: str,
                           query: dict[str, str], now: Now) -> Answer:
        body = self._body(request)
        target = self.engine.find_user(arg)
        if target is None:
            raise ApiError(404, "no_such_nick", f"No such nick: {arg[:60]!r}")
        text = message_text(body, session.user, target.nick)
        tags = client_tags(body)
        return self._settle(self.engine.tell(session.user, target.nick, text, now.wall,
                                             tags=tags), self._sent)

    def get_me_messages(self, request: Request, session: HttpSession, arg: str,
                        query: dict[str, str], now: Now) -> Answer:
        return self._poll(request, session, session.user.inbox, query)

    def get_me_events(self, request: Request, session: HttpSession, arg: str,
                      query: dict[str, str], now: Now) -> Answer:
        return self._stream(request, session, session.user.inbox, query)

    def get_ws(self, request: Request, session: HttpSession, arg: str,
               query: dict[str, str], now: Now) -> Answer:
        """The WebSocket handshake: the adapter takes over (426 if it is no upgrade)."""
        if request.upgrade is None or b"websocket" not in request.upgrade.lower():
            raise ApiError(426, "upgrade_required",
                           "GET /api/ws opens a WebSocket: send Upgrade: websocket",
                           b"upgrade: websocket\r\n")
        if not self.cors.websocket_allowed(request.origin, request.host):
            raise ApiError(403, "origin_not_allowed",
                           "A page of this origin may not open a WebSocket here "
                           "(see --cors-origin)")
        return SwitchProtocols(session)


PUBLIC: dict[str, dict[str, PublicHandler]] = {
    "healthz": {"GET": Api.get_healthz, "HEAD": Api.get_healthz},
    "readyz": {"GET": Api.get_readyz, "HEAD": Api.get_readyz},
    "metrics": {"GET": Api.get_metrics, "HEAD": Api.get_metrics},
    "stats": {"GET": Api.get_stats, "HEAD": Api.get_stats},
    "sessions": {"POST": Api.post_sessions},
    "openapi": {"GET": Api.get_openapi, "HEAD": Api.get_openapi},
    "page": {"GET": Api.get_static, "HEAD": Api.get_static},
    "static": {"GET": Api.get_static, "HEAD": Api.get_static},
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
    "ws": {"GET": Api.get_ws},
    # running a room, typing notices (chat.http.roomops)
    "room_mode": {"GET": get_mode, "HEAD": get_mode, "POST": post_mode},
    "room_kick": {"POST": post_kick},
    "room_invite": {"POST": post_invite},
    "room_typing": {"POST": post_room_typing},
    "user_typing": {"POST": post_user_typing},
}
