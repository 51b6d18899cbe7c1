"""The hub: users, rooms, bounded per-room history and presence, shared by every transport.

No I/O and no clock: every call that changes state takes ``now`` (wall-clock unix seconds,
for event timestamps) from its caller.  The hub is the state of the in-memory engine
(:mod:`chat.engine.memory`); adapters reach it through the engine interface.  Delivery is
push-based through a :class:`Sink` each user may carry (an IRC connection), and pull-based
through each room's :class:`EventLog` (HTTP polls read it; long polls and SSE streams
register one-shot *watchers* that fire on the next append).

Rules the adapters rely on:

* Every room event (message, notice, join, part, quit, nick, topic) gets an id from one
  hub-wide counter, so ids are strictly increasing within every room and also across a
  room that was emptied, dropped and created again.  Private messages take ids from the
  same counter and go to the recipient's inbox log.
* The hub never delivers an event to the user who caused it: echoing (IRC JOIN/PART/NICK
  echo, echo-message) is the adapter's business.
* A QUIT or NICK change is one event per shared room, but each co-member is sent it once.
* One publish hands one fresh :data:`~chat.core.events.Cache` to every sink and watcher it
  reaches, so a line is encoded once per variant however many members receive it.
* Sending a message or a notice marks the sender active (``User.last_active``).
* Every change is an :class:`Op`: ``propose_*`` checks it against the state, the engine
  numbers it, :meth:`Hub.apply` carries it out.  The events an Op creates depend on the Op
  alone (:func:`op_events`), so an engine can store them as it orders the Op, and every
  node that applies the same Ops in the same order reaches the same state.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple, Protocol

from .errors import (
    CannotSend,
    ChannelInvalid,
    HubError,
    NickInUse,
    NickInvalid,
    NoSuchChannel,
    NoSuchNick,
    NotChanOp,
    NotOnChannel,
    TooManyChannels,
)
from .events import KINDS, Cache, Event
from .names import casefold, valid_channel, valid_nick

__all__ = ["KINDS", "CannotSend", "ChannelInvalid", "Event", "EventLog", "Hub", "HubError",
           "Joined", "NickInUse", "NickInvalid", "NoSuchChannel", "NoSuchNick", "NotChanOp",
           "NotOnChannel", "Op", "Room", "Sink", "TooManyChannels", "User", "Watcher"]

DROPPED_ROOMS_KEPT = 4096  # emptied rooms whose last id is remembered for gap reports


class Sink(Protocol):
    """Where pushed events go (an IRC connection's session, a WebSocket connection)."""

    def deliver(self, event: Event, cache: Cache) -> None: ...

    def dropped(self, reason: str) -> None:
        """The user was removed by someone else's change (a kill, its node lost): close."""


Watcher = Callable[[Event, Cache], None]


class EventLog:
    """A bounded, id-ordered event history with one-shot watchers."""

    __slots__ = ("events", "last_id", "evicted_upto", "watchers")

    def __init__(self, maxlen: int, floor: int) -> None:
        self.events: deque[Event] = deque(maxlen=maxlen)
        self.last_id = floor       # id of the newest event (0, or where a dropped room ended)
        self.evicted_upto = floor  # events with id <= this may exist but are gone
        self.watchers: list[Watcher] = []

    def append(self, event: Event, cache: Cache) -> None:
        """Store ``event`` (evicting the oldest if full) and fire the waiting watchers once.

        ``cache`` is the publish's encoding cache, handed on to the watchers.
        """
        if event.id <= self.last_id:
            return  # stored already (a replayed Op): appends are idempotent
        events = self.events
        if events.maxlen is not None and len(events) == events.maxlen:
            if events:
                self.evicted_upto = events[0].id
            else:  # maxlen 0: nothing is kept
                self.evicted_upto = event.id
        events.append(event)
        self.last_id = event.id
        if self.watchers:
            watchers, self.watchers = self.watchers, []
            for watcher in watchers:
                watcher(event, cache)

    def since(self, since: int | None, limit: int) -> tuple[list[Event], int, bool]:
        """Events with id > ``since`` (oldest first, at most ``limit``), the next cursor, gap.

        Without ``since``, the latest ``limit`` events.  ``gap`` is True when events after
        ``since`` have left the history (or ``since`` is ahead of this log: the server was
        restarted), so the caller knows it missed something.
        """
        events = self.events
        if since is None:
            start = max(0, len(events) - limit)
            out = [events[i] for i in range(start, len(events))]
            return out, (out[-1].id if out else self.last_id), False
        if since >= self.last_id:  # the common empty poll: nothing newer
            if since > self.last_id:
                return [], self.last_id, True
            return [], since, False
        gap = since < self.evicted_upto
        start = bisect.bisect_right(events, since, key=_event_id)
        out = [events[i] for i in range(start, min(len(events), start + limit))]
        return out, (out[-1].id if out else since), gap

    def load(self, events: list[Event], evicted_upto: int) -> None:
        """Fill an empty log with stored history (oldest first) that ends where it ends."""
        self.events.extend(events)
        if events:
            self.last_id = max(self.last_id, events[-1].id)
        self.evicted_upto = max(self.evicted_upto, evicted_upto)

    def watch(self, watcher: Watcher) -> None:
        """Call ``watcher(event, cache)`` once, on the next append."""
        self.watchers.append(watcher)

    def unwatch(self, watcher: Watcher) -> None:
        """Forget ``watcher`` if it has not fired yet."""
        try:
            self.watchers.remove(watcher)
        except ValueError:
            pass


def _event_id(event: Event) -> int:
    return event.id


class User:
    """A registered user on any transport.  ``node`` is the server process holding its
    connection ("" for HTTP users, who belong to no connection, and for one process)."""

    __slots__ = ("nick", "key", "user", "host", "userhost", "realname", "transport", "sink",
                 "rooms", "created", "last_active", "inbox", "away", "node", "__weakref__")

    def __init__(self, nick: str, user: str, host: str, realname: str, transport: str,
                 sink: Sink | None, now: float, inbox: EventLog, node: str = "") -> None:
        self.nick = nick
        self.key = casefold(nick)
        self.user = user
        self.host = host
        self.userhost = f"{user}@{host}"  # built once: every event of this user shares it
        self.realname = realname
        self.transport = transport  # "irc", "http" or "ws"
        self.sink = sink
        self.rooms: dict[str, Room] = {}
        self.created = now
        self.last_active = now
        self.inbox = inbox          # private messages (kept only for pollers)
        self.away: str | None = None
        self.node = node

    @property
    def prefix(self) -> str:
        return f"{self.nick}!{self.userhost}"

    def __repr__(self) -> str:
        return f"User({self.nick!r}, {self.transport!r})"


class Room:
    """A channel: members, operators, topic and its event log."""

    __slots__ = ("name", "key", "members", "ops", "topic", "topic_by", "topic_ts", "created",
                 "log", "modes")

    def __init__(self, name: str, now: float, log: EventLog) -> None:
        self.name = name
        self.key = casefold(name)
        self.members: dict[str, User] = {}
        self.ops: set[str] = set()
        self.topic = ""
        self.topic_by = ""
        self.topic_ts = 0.0
        self.created = now
        self.log = log
        self.modes = "nt"

    def is_op(self, user: User) -> bool:
        return user.key in self.ops

    def nick_with_prefix(self, user: User) -> str:
        return ("@" + user.nick) if user.key in self.ops else user.nick


class Joined(NamedTuple):
    """A join's outcome: the room, and the join event (None if already a member)."""

    room: Room
    event: Event | None


class Op(NamedTuple):
    """One replicated change, proposed where it was asked for.

    The engine gives it ``ids`` consecutive event ids (the first is passed to
    :meth:`Hub.apply`), then every node applies it, in order, with the same result.
    ``args`` by kind: register ``(user, host, realname, transport, node, token_hash)``;
    quit and rename the rooms whose members are told; tell ``(event kind,)``.
    """

    kind: str            # register rename quit join part message notice tell topic away
    actor: str           # nick of who does it
    target: str          # channel, recipient, new nick, or ""
    text: str            # text, reason, topic, away message
    ts: float            # wall-clock seconds at the proposing node
    userhost: str = ""   # the actor's user@host when proposed (it is in its events)
    args: tuple[str, ...] = ()
    ids: int = 1         # event ids it consumes

    def to_list(self) -> list[object]:
        """A JSON-ready form (see :func:`op_from_list`)."""
        return [self.kind, self.actor, self.target, self.text, self.ts, self.userhost,
                list(self.args), self.ids]


def op_from_list(data: list[object]) -> Op:
    """The Op of :meth:`Op.to_list` (raises ValueError/TypeError for anything else)."""
    kind, actor, target, text, ts, userhost, args, ids = data
    if not isinstance(args, list) or not isinstance(ts, int | float):
        raise ValueError("malformed op")
    return Op(str(kind), str(actor), str(target), str(text), float(ts), str(userhost),
              tuple(str(a) for a in args), int(ids))  # type: ignore[call-overload]


ROOM_KINDS = frozenset({"join", "part", "message", "notice", "topic"})


def op_events(op: Op, first_id: int) -> list[Event]:
    """The events ``op`` creates, numbered from ``first_id`` (a function of the Op alone)."""
    kind = op.kind
    if kind in ROOM_KINDS:
        return [Event(op.target, first_id, op.ts, kind, op.actor, op.userhost, op.text)]
    if kind == "quit":
        return [Event(room, first_id + i, op.ts, "quit", op.actor, op.userhost, op.text)
                for i, room in enumerate(op.args)]
    if kind == "rename":
        return [Event(room, first_id + i, op.ts, "nick", op.actor, op.userhost, op.target)
                for i, room in enumerate(op.args)]
    if kind == "tell":
        return [Event(op.target, first_id, op.ts, op.args[0], op.actor, op.userhost, op.text)]
    return []


class Hub:
    """All users and rooms one node knows: a state machine fed with :class:`Op` values.

    ``propose_*`` check a request against the current state (raising a HubError) and
    return the Op to apply; :meth:`apply` carries an Op out.  The methods named after the
    requests (``join``, ``say``, ...) do both with the hub's own id counter, which is
    what the in-memory engine does.

    With ``keep_dormant`` an emptied room keeps its history log (a shared store has it
    anyway) and a room created again continues it; otherwise only its last id is kept, so
    a stale cursor is told it has a gap.
    """

    def __init__(self, *, history: int = 1000, nicklen: int = 30, channellen: int = 64,
                 topiclen: int = 390, max_channels: int = 50, epoch: int = 0,
                 keep_dormant: bool = False) -> None:
        self.history = history
        self.nicklen = nicklen
        self.channellen = channellen
        self.topiclen = topiclen
        self.max_channels = max_channels
        self.epoch = epoch          # identifies this store's run (see the engines)
        self.keep_dormant = keep_dormant
        # False when a shared store owns the nicks (it refuses a taken one atomically): a
        # view that lags another node must not refuse a nick that was just given up there.
        self.own_nicks = True
        self.users: dict[str, User] = {}
        self.rooms: dict[str, Room] = {}
        self.tokens: dict[str, str] = {}  # HTTP session token hash -> user key
        self.seq = 0                # the last event id given out (by this hub or applied)
        self._dropped: dict[str, int] = {}  # last ids of emptied rooms, oldest first
        self.dormant: dict[str, EventLog] = {}  # logs of emptied rooms (keep_dormant)
        self.messages = {"irc": 0, "http": 0}  # messages+notices sent, by sender transport
        self.pushed_inbox = EventLog(0, 0)  # the inbox of every push user (see _register)

    # --- lookups ---------------------------------------------------------------------------
    def find_user(self, nick: str) -> User | None:
        return self.users.get(casefold(nick))

    def find_room(self, channel: str) -> Room | None:
        return self.rooms.get(casefold(channel))

    def nick_available(self, nick: str) -> bool:
        return casefold(nick) not in self.users

    def check_nick(self, nick: str) -> None:
        """Raise NickInvalid or NickInUse unless ``nick`` could be taken now."""
        if not valid_nick(nick, self.nicklen):
            raise NickInvalid(nick, "Erroneous nickname")
        if self.own_nicks and casefold(nick) in self.users:
            raise NickInUse(nick, "Nickname is already in use")

    def iter_rooms(self) -> Iterator[Room]:
        return iter(self.rooms.values())

    def user_of_token(self, token_hash: str) -> User | None:
        key = self.tokens.get(token_hash)
        return self.users.get(key) if key is not None else None

    # --- proposals: checks against the current state, no change ------------------------------
    def propose_register(self, nick: str, user: str, host: str, realname: str,
                         transport: str, now: float, node: str = "",
                         token_hash: str = "") -> Op:
        self.check_nick(nick)
        return Op("register", nick, "", "", now, f"{user}@{host}",
                  (user, host, realname, transport, node, token_hash), ids=0)

    def propose_rename(self, member: User, new_nick: str, now: float) -> Op | None:
        """None when ``new_nick`` is the nick already (nothing to do)."""
        if new_nick == member.nick:
            return None
        if casefold(new_nick) != member.key:
            self.check_nick(new_nick)
        elif not valid_nick(new_nick, self.nicklen):
            raise NickInvalid(new_nick, "Erroneous nickname")
        rooms = tuple(room.name for room in member.rooms.values())
        return Op("rename", member.nick, new_nick, "", now, member.userhost, rooms,
                  ids=len(rooms))

    def propose_quit(self, member: User, reason: str, now: float) -> Op | None:
        """None when ``member`` is not (any more) a user of this hub."""
        if self.users.get(member.key) is not member:
            return None
        rooms = tuple(room.name for room in member.rooms.values())
        return Op("quit", member.nick, "", reason, now, member.userhost, rooms,
                  ids=len(rooms))

    def propose_join(self, member: User, channel: str, now: float) -> Op | None:
        """None when ``member`` is in ``channel`` already."""
        room = self.rooms.get(casefold(channel))
        if room is not None and member.key in room.members:
            return None
        if room is None and not valid_channel(channel, self.channellen):
            raise ChannelInvalid(channel, "Illegal channel name")
        if len(member.rooms) >= self.max_channels:
            raise TooManyChannels(channel, "You have joined too many channels")
        name = room.name if room is not None else channel
        return Op("join", member.nick, name, "", now, member.userhost)

    def propose_part(self, member: User, channel: str, reason: str, now: float) -> Op:
        room = self._room_of(member, channel)
        return Op("part", member.nick, room.name, reason, now, member.userhost)

    def propose_say(self, member: User, channel: str, text: str, now: float,
                    kind: str = "message") -> Op:
        room = self.rooms.get(casefold(channel))
        if room is None:
            raise NoSuchChannel(channel, "No such channel")
        if member.key not in room.members:
            raise CannotSend(room.name, "Cannot send to channel")
        return Op(kind, member.nick, room.name, text, now, member.userhost)

    def propose_topic(self, member: User, channel: str, topic: str, now: float) -> Op:
        room = self._room_of(member, channel)
        if "t" in room.modes and member.key not in room.ops:
            raise NotChanOp(room.name, "You're not channel operator")
        return Op("topic", member.nick, room.name, topic[: self.topiclen], now,
                  member.userhost)

    def propose_tell(self, member: User, nick: str, text: str, now: float,
                     kind: str = "message") -> Op:
        target = self.users.get(casefold(nick))
        if target is None:
            raise NoSuchNick(nick, "No such nick/channel")
        return Op("tell", member.nick, target.nick, text, now, member.userhost, (kind,))

    def propose_away(self, member: User, text: str | None, now: float) -> Op:
        return Op("away", member.nick, "", text or "", now, member.userhost,
                  ("1" if text else "",), ids=0)

    def _room_of(self, member: User, channel: str) -> Room:
        room = self.rooms.get(casefold(channel))
        if room is None:
            raise NoSuchChannel(channel, "No such channel")
        if member.key not in room.members:
            raise NotOnChannel(room.name, "You're not on that channel")
        return room

    # --- applying: the same Op gives the same state on every node ------------------------------
    def apply(self, op: Op, first_id: int, sink: Sink | None = None) -> Any:
        """Carry ``op`` out with event ids from ``first_id``; its result for the proposer.

        Results: register -> User; join -> Joined; rename, quit -> list of events; part,
        message, notice, tell, topic -> Event | None; away -> None.  An Op whose actor has
        gone meanwhile (another node's change came first) does nothing.  ``sink`` is the
        proposer's connection, for a register made on this node.
        """
        if op.ids:
            self.seq = max(self.seq, first_id + op.ids - 1)
        if op.kind == "register":
            return self._register(op, sink)
        member = self.users.get(casefold(op.actor))
        if member is None:
            return [] if op.kind in ("quit", "rename") else None
        return APPLY[op.kind](self, op, op_events(op, first_id), member)

    def _register(self, op: Op, sink: Sink | None) -> User:
        user, host, realname, transport, node, token_hash = op.args
        # Push users (IRC, WebSocket) have private messages pushed, never kept: one shared
        # log that keeps nothing stands in for their inbox (a deque each costs ~0.8 KiB).
        inbox = EventLog(self.history, 0) if transport == "http" else self.pushed_inbox
        member = User(op.actor, user, host, realname, transport, sink, op.ts, inbox, node)
        self.users[member.key] = member
        if token_hash:
            self.tokens[token_hash] = member.key
        return member

    def _apply_rename(self, op: Op, events: list[Event], member: User) -> list[Event]:
        new_nick = op.target
        new_key = casefold(new_nick)
        self._fan_out(events, member)
        del self.users[member.key]
        for room in member.rooms.values():
            del room.members[member.key]
            room.members[new_key] = member
            if member.key in room.ops:
                room.ops.discard(member.key)
                room.ops.add(new_key)
        for token, key in list(self.tokens.items()):
            if key == member.key:
                self.tokens[token] = new_key
        member.nick, member.key = new_nick, new_key
        self.users[new_key] = member
        return events

    def _apply_quit(self, op: Op, events: list[Event], member: User) -> list[Event]:
        self._fan_out(events, member)
        for room in list(member.rooms.values()):
            self._leave(member, room)
        del self.users[member.key]
        if member.transport == "http":
            for token in [t for t, key in self.tokens.items() if key == member.key]:
                del self.tokens[token]
        sink, member.sink = member.sink, None
        if sink is not None:
            sink.dropped(op.text)  # a no-op when the sink itself asked to quit
        return events

    def _fan_out(self, events: list[Event], member: User) -> None:
        """Store each event in its room (if the room exists); a co-member of several of the
        rooms is pushed the first one only."""
        told: set[str] = {member.key}
        for event in events:
            room = self.rooms.get(casefold(event.target))
            if room is None:
                continue
            cache: Cache = {}
            for key, other in room.members.items():
                if key not in told:
                    told.add(key)
                    if other.sink is not None:
                        other.sink.deliver(event, cache)
            room.log.append(event, cache)

    def _apply_join(self, op: Op, events: list[Event], member: User) -> Joined:
        key = casefold(op.target)
        room = self.rooms.get(key)
        if room is not None and member.key in room.members:
            return Joined(room, None)
        if room is None:
            room = Room(op.target, op.ts, self._log_for(key))
            self.rooms[key] = room
            room.ops.add(member.key)  # the creator is operator
        room.members[member.key] = member
        member.rooms[room.key] = room
        self._publish(room, events[0], member)
        return Joined(room, events[0])

    def _log_for(self, key: str) -> EventLog:
        """The log of a room being created: its dormant one, or a new one that continues
        from where a dropped room of that name ended (so stale cursors see a gap)."""
        log = self.dormant.pop(key, None)
        if log is not None:
            return log
        return EventLog(self.history, self._dropped.pop(key, 0))

    def _apply_part(self, op: Op, events: list[Event], member: User) -> Event | None:
        room = member.rooms.get(casefold(op.target))
        if room is None:
            return None
        self._publish(room, events[0], member)
        self._leave(member, room)
        return events[0]

    def _apply_say(self, op: Op, events: list[Event], member: User) -> Event | None:
        room = self.rooms.get(casefold(op.target))
        if room is None:
            return None
        self.messages[member.transport] = self.messages.get(member.transport, 0) + 1
        member.last_active = op.ts
        self._publish(room, events[0], member)
        return events[0]

    def _apply_topic(self, op: Op, events: list[Event], member: User) -> Event | None:
        room = self.rooms.get(casefold(op.target))
        if room is None:
            return None
        room.topic = op.text
        room.topic_by = member.prefix
        room.topic_ts = op.ts
        self._publish(room, events[0], member)
        return events[0]

    def _apply_tell(self, op: Op, events: list[Event], member: User) -> Event | None:
        target = self.users.get(casefold(op.target))
        if target is None:
            return None
        self.messages[member.transport] = self.messages.get(member.transport, 0) + 1
        member.last_active = op.ts
        event = events[0]
        cache: Cache = {}
        if target.sink is not None:
            target.sink.deliver(event, cache)
        target.inbox.append(event, cache)
        return event

    def _apply_away(self, op: Op, events: list[Event], member: User) -> None:
        member.away = op.text if op.args[0] else None

    def _leave(self, member: User, room: Room) -> None:
        room.members.pop(member.key, None)
        room.ops.discard(member.key)
        member.rooms.pop(room.key, None)
        if not room.members:
            del self.rooms[room.key]
            if self.keep_dormant:
                self.dormant[room.key] = room.log
                room.log.watchers.clear()
                if len(self.dormant) > DROPPED_ROOMS_KEPT:
                    old_key = next(iter(self.dormant))
                    self._dropped[old_key] = self.dormant.pop(old_key).last_id
            else:
                self._dropped[room.key] = room.log.last_id
            if len(self._dropped) > DROPPED_ROOMS_KEPT:
                del self._dropped[next(iter(self._dropped))]

    def _publish(self, room: Room, event: Event, member: User) -> None:
        """Push to every other member's sink, then store (which wakes watchers)."""
        # Hot path: one loop over members, one method call per pushed delivery.  The
        # cache lives for this publish only: the history keeps events, not their bytes.
        cache: Cache = {}
        for other in room.members.values():
            sink = other.sink
            if sink is not None and other is not member:
                sink.deliver(event, cache)
        room.log.append(event, cache)

    # --- requests applied at once (the in-memory engine) ---------------------------------------
    def run(self, op: Op, sink: Sink | None = None) -> Any:
        """Number ``op`` with this hub's counter and apply it."""
        return self.apply(op, self.seq + 1, sink)

    def register(self, nick: str, user: str, host: str, realname: str, transport: str,
                 sink: Sink | None, now: float) -> User:
        """Create a user under ``nick`` (raises NickInvalid / NickInUse)."""
        result: User = self.run(self.propose_register(nick, user, host, realname, transport,
                                                      now), sink)
        return result

    def rename(self, member: User, new_nick: str, now: float) -> list[Event]:
        """Change ``member``'s nick; one ``nick`` event per room, each co-member told once."""
        op = self.propose_rename(member, new_nick, now)
        events: list[Event] = self.run(op) if op is not None else []
        return events

    def quit(self, member: User, reason: str, now: float) -> list[Event]:
        """Remove ``member`` from every room and free the nick; co-members told once."""
        op = self.propose_quit(member, reason, now)
        events: list[Event] = self.run(op) if op is not None else []
        return events

    def join(self, member: User, channel: str, now: float) -> Joined:
        """Add ``member`` to ``channel`` (created on first join, creator becomes operator).

        Returns the room and the join event, or None as the event if already a member.
        """
        op = self.propose_join(member, channel, now)
        if op is None:
            return self.already_joined(channel)
        joined: Joined = self.run(op)
        return joined

    def already_joined(self, channel: str) -> Joined:
        """The outcome of joining a room one is in already."""
        room = self.find_room(channel)
        assert room is not None
        return Joined(room, None)

    def part(self, member: User, channel: str, reason: str, now: float) -> Event:
        """Remove ``member`` from ``channel`` (raises NoSuchChannel / NotOnChannel)."""
        event: Event = self.run(self.propose_part(member, channel, reason, now))
        return event

    def say(self, member: User, channel: str, text: str, now: float,
            kind: str = "message") -> Event:
        """Publish a message or notice to ``channel``; the sender must be a member (+n)."""
        event: Event = self.run(self.propose_say(member, channel, text, now, kind))
        return event

    def set_topic(self, member: User, channel: str, topic: str, now: float) -> Event:
        """Set the topic (+t: operators only); truncated to ``topiclen``."""
        event: Event = self.run(self.propose_topic(member, channel, topic, now))
        return event

    def tell(self, member: User, nick: str, text: str, now: float,
             kind: str = "message") -> Event:
        """Send a private message or notice to ``nick`` (raises NoSuchNick)."""
        event: Event = self.run(self.propose_tell(member, nick, text, now, kind))
        return event

    def set_away(self, member: User, text: str | None, now: float) -> None:
        self.run(self.propose_away(member, text, now))


Applier = Callable[[Hub, Op, list[Event], User], Any]
APPLY: dict[str, Applier] = {
    "rename": Hub._apply_rename, "quit": Hub._apply_quit, "join": Hub._apply_join,
    "part": Hub._apply_part, "message": Hub._apply_say, "notice": Hub._apply_say,
    "topic": Hub._apply_topic, "tell": Hub._apply_tell, "away": Hub._apply_away,
}
