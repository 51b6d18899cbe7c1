"""One WebSocket client's chat protocol: JSON frames in -> engine calls; frames out (pure).

Like :mod:`chat.http.api` this touches no socket and reads no clock: the adapter
(:mod:`chat.ws.server`) hands each complete text message to :meth:`WsSession.receive` with
the current :class:`~chat.core.clock.Now`, and takes the queued wire bytes with
:meth:`WsSession.take_pending` when the session calls its owner's ``wakeup``.  Frames are built by
the adapter's :class:`Framer` (the ``websockets`` library's frame serializer); this module
only decides their JSON.

Frames from the client are JSON objects with a ``type`` (say, msg, join, part, nick, topic,
resume, members, ping, typing) and an optional ``ref`` echoed in the answer; say and msg
may carry client-only ``tags``, join a ``key``.  Frames to the client
are the API's event objects (they have ``kind``), or control frames with a ``type``: hello,
ack, joined, resumed, members, pong, error (with the API's error codes).

Subscriptions: the session is its user's hub :class:`~chat.core.hub.Sink`, but it sends a
room's events only once the client has joined or resumed that room *on this connection*,
and private messages once it has resumed ``"room": null``.  So a replay ("everything after
id N", with the poll API's ``gap`` rule) and the live events after it form one gap-free,
duplicate-free sequence: no live event can overtake the replay.  The client's own room
events come back too (the hub pushes to everyone else), in order, as in a poll.

Engine writes may settle later: :meth:`WsSession.expect` holds the client's next frames
(``waiting``) until the owner's ``resume`` is called, so commands take effect in the order sent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import orjson

from ..core.clock import Now
from ..core.errors import HubError
from ..core.events import Cache, Event
from ..core.hub import EventLog, Room
from ..core.names import channel_to_room
from ..core.pending import Pending
from ..core.stats import TransportStats
from ..engine.base import Engine
from ..http.inputs import (
    ApiError,
    client_tags,
    find_room,
    joined_room,
    member_nicks,
    members_of,
    message_text,
    reason_field,
    room_channel,
    string_field,
    typing_tags,
)
from ..http.sessions import HttpSession

log = logging.getLogger(__name__)

T = TypeVar("T")
WS_FRAME = "ws"      # this transport's key in a publish's encoding cache
REPLAY_BATCH = 1000  # events per read of the history when replaying
Frame = dict[str, Any]


class Framer(Protocol):
    """Turns a text payload into wire bytes (the adapter's, around the library)."""

    shared: bool  # True: the bytes do not depend on the connection (no compression context)

    def text(self, payload: bytes) -> bytes: ...


class Owner(Protocol):
    """What a session calls back: its adapter (one reference instead of three bound
    methods per connection)."""

    def wakeup(self) -> None:
        """Pending frames went from none to some: flush soon."""

    def resume(self) -> None:
        """The engine writes the session waited for have settled: go on with input."""

    def dropped(self, reason: str) -> None:
        """The hub removed our user on someone else's change: close."""


class WsSession:
    """The chat side of one WebSocket connection (see the module docstring)."""

    __slots__ = ("engine", "http", "user", "stats", "framer", "owner", "pending",
                 "pending_size", "live", "inbox_live", "waiting", "closed",
                 "ping_interval", "member_limit")

    def __init__(self, engine: Engine, http: HttpSession, stats: TransportStats,
                 framer: Framer, owner: Owner, ping_interval: float) -> None:
        self.engine = engine
        self.http = http
        self.user = http.user
        self.stats = stats
        self.framer = framer
        self.owner = owner            # its wakeup: pending went from empty to not
        self.pending: list[bytes] | None = None  # queued wire bytes (None when empty)
        self.pending_size = 0
        self.live: set[str] = set()   # names of the rooms whose events this connection gets
        self.inbox_live = False       # private messages too
        self.waiting = 0              # engine writes not settled yet (input held meanwhile)
        self.member_limit = 1000  # nicks in a joined frame (the adapter's --join-members)
        self.closed = False
        self.ping_interval = ping_interval

    # --- output ------------------------------------------------------------------------------
    def deliver(self, event: Event, cache: Cache) -> None:
        """The hub's push: queue ``event`` if this connection subscribed to its room.

        Hot path: without per-connection compression the frame is built once per publish
        and shared by every member's connection through ``cache``.
        """
        if self.closed:
            return
        if event.private:
            if not self.inbox_live:
                return
        elif event.target not in self.live:
            return
        framer = self.framer
        if framer.shared:
            data = cache.get(WS_FRAME)
            if data is None:
                data = cache[WS_FRAME] = framer.text(event.to_json())
        else:
            data = framer.text(event.to_json())
        self.stats.deliveries += 1
        self.send_bytes(data)

    def offer(self, event: Event, cache: Cache) -> None:
        """Transient events: typing notices (TAGMSG) go to the page like events; away,
        realname and host changes and invite notices are IRC's business."""
        if event.kind == "tagmsg":
            self.deliver(event, cache)

    def send_bytes(self, data: bytes) -> None:
        """Queue wire bytes (a frame, or what the library wants sent: pongs, close)."""
        pending = self.pending
        if pending is None:
            self.pending = [data]
            self.owner.wakeup()
        else:
            pending.append(data)
        self.pending_size += len(data)

    def send(self, frame: Frame) -> None:
        """Queue one control frame (a ``ref`` of None is left out)."""
        if "ref" in frame and frame["ref"] is None:
            del frame["ref"]
        self.send_bytes(self.framer.text(orjson.dumps(frame)))

    def send_event(self, event: Event) -> None:
        """Queue one event (our own, or a replayed one)."""
        self.send_bytes(self.framer.text(event.to_json()))

    def dropped(self, reason: str) -> None:
        """The hub removed our user on someone else's change: the connection must go."""
        if not self.closed:
            self.owner.dropped(reason)

    def take_pending(self) -> list[bytes]:
        """Hand the queued bytes to the adapter (the one way out) and start afresh."""
        pending = self.pending
        self.pending = None
        self.pending_size = 0
        return pending or []

    def hello(self) -> None:
        """The first frame: who we are, the rooms joined (not yet subscribed), the run."""
        rooms = sorted(channel_to_room(r.name) for r in self.user.rooms)
        self.send({"type": "hello", "nick": self.user.nick, "rooms": rooms,
                   "epoch": self.engine.epoch, "ping_interval": self.ping_interval})

    def close(self) -> None:
        """The connection is closing: nothing more is queued."""
        self.closed = True
        self.pending = None
        self.pending_size = 0

    # --- input -------------------------------------------------------------------------------
    def receive(self, payload: bytes | str, now: Now) -> bool:
        """Handle one text message; True if it was a command (not an application ping)."""
        self.stats.requests += 1
        try:
            frame = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            self.error(None, None, "bad_json", f"A frame must be JSON: {exc}")
            return True
        if not isinstance(frame, dict):
            self.error(None, None, "bad_json", "A frame must be a JSON object")
            return True
        kind, ref = frame.get("type"), frame.get("ref")
        if ref is not None and not isinstance(ref, str | int):
            ref = None
        handler = HANDLERS.get(kind) if isinstance(kind, str) else None
        if handler is None:
            self.error(ref, None, "bad_request", f"Unknown frame type {str(kind)[:40]!r}; "
                       f"one of {', '.join(HANDLERS)}")
            return True
        try:
            handler(self, frame, ref, now)
        except ApiError as exc:
            self.error(ref, kind, exc.code, exc.message)
        except HubError as exc:
            self.error(ref, kind, exc.code, exc.message)
        except Exception:  # a bug answers this frame; the connection and the others go on
            log.exception("error handling a %s frame of %s", kind, self.user.nick)
            self.error(ref, kind, "internal", "Internal server error")
        return kind != "ping"

    def error(self, ref: Any, op: str | None, code: str, message: str) -> None:
        self.stats.errors[code] += 1
        frame: Frame = {"type": "error", "op": op, "error": code, "message": message}
        if ref is not None:
            frame["ref"] = ref
        self.send(frame)

    def ack(self, ref: Any, op: str, **fields: Any) -> None:
        frame: Frame = {"type": "ack", "op": op, **fields}
        if ref is not None:
            frame["ref"] = ref
        self.send(frame)

    def expect(self, pending: Pending[T], ref: Any, op: str,
               on_ok: Callable[[T], None]) -> None:
        """Run ``on_ok`` when the engine settles ``pending``; an error frame on refusal.

        Until then the session is ``waiting`` and the adapter holds further frames.
        """
        def failed(exc: HubError) -> None:
            if not self.closed:
                self.error(ref, op, exc.code, exc.message)

        def done(value: T) -> None:
            if not self.closed:
                on_ok(value)

        if pending.done:  # the in-memory engine: no bookkeeping at all
            pending.then(done, failed)
            return
        self.waiting += 1
        pending.then(lambda value: self._settled(done, value),
                     lambda exc: self._settled(failed, exc))

    def _settled(self, callback: Callable[[Any], None], value: Any) -> None:
        self.waiting -= 1
        callback(value)
        if not self.waiting and not self.closed:
            self.owner.resume()

    # --- subscriptions -----------------------------------------------------------------------
    def replay(self, log: EventLog, after: int | None) -> tuple[int, bool]:
        """Send the events after ``after`` (none if None); the next cursor and the gap."""
        if after is None:
            return log.last_id, False
        events, next_id, gap = log.since(after, REPLAY_BATCH)
        while events:
            for event in events:
                self.send_event(event)
            self.stats.deliveries += len(events)
            if len(events) < REPLAY_BATCH:
                break
            events, next_id, _gap = log.since(next_id, REPLAY_BATCH)
        return next_id, gap

    def joined(self, ref: Any, room: Room, after: int | None) -> None:
        """The join went through: replay after ``after``, subscribe, answer ``joined``."""
        next_id, gap = self.replay(room.log, after)
        self.live.add(room.name)
        self.send({"type": "joined", "ref": ref, "room": channel_to_room(room.name),
                   "members": member_nicks(room, self.member_limit),
                   "members_total": len(room.members), "last_id": room.log.last_id,
                   "topic": room.topic, "next": next_id, "gap": gap, "epoch": self.engine.epoch})

    def echo(self, event: Event) -> None:
        """Our own room event, if this connection is subscribed to the room."""
        if event.target in self.live:
            self.send_event(event)


# --- the frame handlers: (session, frame, ref, now) -> None, raising ApiError/HubError ---

def _after(frame: Frame) -> int | None:
    after = frame.get("after")
    if after is not None and (not isinstance(after, int) or isinstance(after, bool)
                              or after < 0):
        raise ApiError(400, "bad_parameter", "'after' must be a non-negative integer")
    return after


def _say(s: WsSession, frame: Frame, ref: Any, now: Now) -> None:
    room = joined_room(s.engine, s.user, string_field(frame, "room"))
    text = message_text(frame, s.user, room.name)

    def sent(event: Event) -> None:
        s.stats.messages += 1
        s.echo(event)
        s.ack(ref, "say", id=event.id, ts=event.ts)

    tags = client_tags(frame)
    s.expect(s.engine.say(s.user, room.name, text, now.wall, tags=tags), ref, "say", sent)


def _msg(s: WsSession, frame: Frame, ref: Any, now: Now) -> None:
    to = string_field(frame, "to")
    target = s.engine.find_user(to)
    if target is None:
        raise ApiError(404, "no_such_nick", f"No such nick: {to[:60]!r}")
    text = message_text(frame, s.user, target.nick)

    def sent(event: Event) -> None:
        s.stats.messages += 1
        s.ack(ref, "msg", id=event.id, ts=event.ts, to=event.target)

    tags = client_tags(frame)
    s.expect(s.engine.tell(s.user, target.nick, text, now.wall, tags=tags), ref, "msg", sent)


def _typing(s: WsSession, frame: Frame, ref: Any, now: Now) -> None:
    """``{"type": "typing", "room" or "to", "state"}``: a +typing notice, never stored."""
    tags = typing_tags(frame)

    def sent(event: Event) -> None:
        s.ack(ref, "typing", id=event.id, ts=event.ts)

    if frame.get("to") is not None:
        to = string_field(frame, "to")
        target = s.engine.find_user(to)
        if target is None:
            raise ApiError(404, "no_such_nick", f"No such nick: {to[:60]!r}")
        s.expect(s.engine.tell(s.user, target.nick, "", now.wall, "tagmsg", tags), ref,
                 "typing", sent)
        return
    room = joined_room(s.engine, s.user, string_field(frame, "room"))
    s.expect(s.engine.say(s.user, room.name, "", now.wall, "tagmsg", tags), ref, "typing",
             sent)


def _join(s: WsSession, frame: Frame, ref: Any, now: Now) -> None:
    channel = room_channel(string_field(frame, "room"))
    after = _after(frame)
    key = string_field(frame, "key", "")  # for a +k room
    s.expect(s.engine.join(s.user, channel, now.wall, key), ref, "join",
             lambda joined: s.joined(ref, joined.room, after))


def _part(s: WsSession, frame: Frame, ref: Any, now: Now) -> None:
    room = joined_room(s.engine, s.user, string_field(frame, "room"))
    reason = reason_field(frame, "reason", "", s.user, "PART", room.name)

    def parted(event: Event) -> None:
        s.echo(event)
        s.live.discard(room.name)
        s.ack(ref, "part", room=channel_to_room(room.name))

    s.expect(s.engine.part(s.user, room.name, reason, now.wall), ref, "part", parted)


def _nick(s: WsSession, frame: Frame, ref: Any, now: Now) -> None:
    nick = string_field(frame, "nick")

    def renamed(events: list[Event]) -> None:
        for event in events:
            s.echo(event)
        s.ack(ref, "nick", nick=s.user.nick)

    s.expect(s.engine.rename(s.user, nick, now.wall), ref, "nick", renamed)


def _topic(s: WsSession, frame: Frame, ref: Any, now: Now) -> None:
    room = joined_room(s.engine, s.user, string_field(frame, "room"))
    if "topic" not in frame:
        raise ApiError(400, "bad_request", "'topic' is missing")
    topic = reason_field(frame, "topic", "", s.user, "TOPIC", room.name)

    def changed(event: Event) -> None:
        s.echo(event)
        s.ack(ref, "topic", id=event.id, topic=event.text)

    s.expect(s.engine.set_topic(s.user, room.name, topic, now.wall), ref, "topic", changed)


def _resume(s: WsSession, frame: Frame, ref: Any, now: Now) -> None:
    """Replay after ``after`` and subscribe: a joined room, or (``room`` null) the inbox."""
    after = _after(frame)
    name = frame.get("room")
    if name is None:
        next_id, gap = s.replay(s.user.inbox, after)
        s.inbox_live = True
    else:
        room = joined_room(s.engine, s.user, string_field(frame, "room"))
        next_id, gap = s.replay(room.log, after)
        s.live.add(room.name)
        name = channel_to_room(room.name)
    s.send({"type": "resumed", "ref": ref, "room": name, "after": after, "next": next_id,
            "gap": gap})


def _members(s: WsSession, frame: Frame, ref: Any, now: Now) -> None:
    room = find_room(s.engine, string_field(frame, "room"))
    offset, limit = frame.get("offset", 0), frame.get("limit", s.member_limit)
    if not (type(offset) is int and type(limit) is int and offset >= 0 and limit >= 1):
        raise ApiError(400, "bad_parameter", "offset and limit must be integers (limit > 0)")
    members = members_of(room, now.wall, offset, limit)
    end = offset + len(members)
    s.send({"type": "members", "ref": ref, "room": channel_to_room(room.name),
            "members": members, "total": len(room.members),
            "next": end if end < len(room.members) else None})


def _ping(s: WsSession, frame: Frame, ref: Any, now: Now) -> None:
    s.send({"type": "pong", "ref": ref, "ts": now.wall})


Handler = Callable[[WsSession, Frame, Any, Now], None]
HANDLERS: dict[str, Handler] = {
    "say": _say, "msg": _msg, "join": _join, "part": _part, "nick": _nick, "topic": _topic,
    "resume": _resume, "members": _members, "ping": _ping, "typing": _typing,
}
