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
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Callable, Iterator
from typing import Protocol

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
           "NickInUse", "NickInvalid", "NoSuchChannel", "NoSuchNick", "NotChanOp",
           "NotOnChannel", "Room", "Sink", "TooManyChannels", "User", "Watcher"]

DROPPED_ROOMS_KEPT = 4096  # emptied rooms whose last id is remembered for gap reports


class Sink(Protocol):
    """Where pushed events go (an IRC connection's session)."""

    def deliver(self, event: Event, cache: Cache) -> None: ...


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
    """A registered user on either transport."""

    __slots__ = ("nick", "key", "user", "host", "userhost", "realname", "transport", "sink",
                 "rooms", "created", "last_active", "inbox", "away", "__weakref__")

    def __init__(self, nick: str, user: str, host: str, realname: str, transport: str,
                 sink: Sink | None, now: float, inbox: EventLog) -> None:
        self.nick = nick
        self.key = casefold(nick)
        self.user = user
        self.host = host
        self.userhost = f"{user}@{host}"  # built once: every event of this user shares it
        self.realname = realname
        self.transport = transport  # "irc" or "http"
        self.sink = sink
        self.rooms: dict[str, Room] = {}
        self.created = now
        self.last_active = now
        self.inbox = inbox          # private messages (kept only for pollers)
        self.away: str | None = None

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


class Hub:
    """All users and rooms of one server."""

    def __init__(self, *, history: int = 1000, nicklen: int = 30, channellen: int = 64,
                 topiclen: int = 390, max_channels: int = 50, epoch: int = 0) -> None:
        self.history = history
        self.nicklen = nicklen
        self.channellen = channellen
        self.topiclen = topiclen
        self.max_channels = max_channels
        self.epoch = epoch          # identifies this server run (the boot time in ms)
        self.users: dict[str, User] = {}
        self.rooms: dict[str, Room] = {}
        self.seq = 0                # the hub-wide event id counter
        self._dropped: dict[str, int] = {}  # last ids of emptied rooms, oldest first
        self.messages = {"irc": 0, "http": 0}  # messages+notices sent, by sender transport
        self.pushed_inbox = EventLog(0, 0)  # the inbox of every user with a sink (see register)

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
        if casefold(nick) in self.users:
            raise NickInUse(nick, "Nickname is already in use")

    # --- users -------------------------------------------------------------------------------
    def register(self, nick: str, user: str, host: str, realname: str, transport: str,
                 sink: Sink | None, now: float) -> User:
        """Create a user under ``nick`` (raises NickInvalid / NickInUse)."""
        self.check_nick(nick)
        # A user with a sink has private messages pushed, never kept: one shared log that
        # keeps nothing stands in for its inbox (a deque each costs ~0.8 KiB per connection).
        inbox = EventLog(self.history, 0) if sink is None else self.pushed_inbox
        member = User(nick, user, host, realname, transport, sink, now, inbox)
        self.users[member.key] = member
        return member

    def rename(self, member: User, new_nick: str, now: float) -> list[Event]:
        """Change ``member``'s nick; one ``nick`` event per room, each co-member told once."""
        if new_nick == member.nick:
            return []
        new_key = casefold(new_nick)
        if new_key != member.key:
            self.check_nick(new_nick)
        elif not valid_nick(new_nick, self.nicklen):
            raise NickInvalid(new_nick, "Erroneous nickname")
        events = self._fan_out(member, "nick", new_nick, now)
        del self.users[member.key]
        for room in member.rooms.values():
            del room.members[member.key]
            room.members[new_key] = member
            if member.key in room.ops:
                room.ops.discard(member.key)
                room.ops.add(new_key)
        member.nick, member.key = new_nick, new_key
        self.users[new_key] = member
        return events

    def quit(self, member: User, reason: str, now: float) -> list[Event]:
        """Remove ``member`` from every room and free the nick; co-members told once."""
        if self.users.get(member.key) is not member:
            return []
        events = self._fan_out(member, "quit", reason, now)
        for room in list(member.rooms.values()):
            self._leave(member, room)
        del self.users[member.key]
        return events

    def _fan_out(self, member: User, kind: str, text: str, now: float) -> list[Event]:
        events: list[Event] = []
        told: set[str] = {member.key}
        for room in member.rooms.values():
            event = self._new_event(room.name, kind, member, text, now)
            events.append(event)
            cache: Cache = {}
            for key, other in room.members.items():
                if key not in told:
                    told.add(key)
                    if other.sink is not None:
                        other.sink.deliver(event, cache)
            room.log.append(event, cache)
        return events

    # --- rooms -------------------------------------------------------------------------------
    def join(self, member: User, channel: str, now: float) -> tuple[Room, Event | None]:
        """Add ``member`` to ``channel`` (created on first join, creator becomes operator).

        Returns the room and the join event, or None as the event if already a member.
        """
        key = casefold(channel)
        room = self.rooms.get(key)
        if room is not None and member.key in room.members:
            return room, None
        if room is None and not valid_channel(channel, self.channellen):
            raise ChannelInvalid(channel, "Illegal channel name")
        if len(member.rooms) >= self.max_channels:
            raise TooManyChannels(channel, "You have joined too many channels")
        if room is None:
            # A room dropped and created again continues from its old last id, so a stale
            # cursor from before the drop is told it has a gap.
            floor = self._dropped.pop(key, 0)
            room = Room(channel, now, EventLog(self.history, floor))
            self.rooms[key] = room
            room.ops.add(member.key)
        room.members[member.key] = member
        member.rooms[room.key] = room
        return room, self._publish(room, "join", member, "", now)

    def part(self, member: User, channel: str, reason: str, now: float) -> Event:
        """Remove ``member`` from ``channel`` (raises NoSuchChannel / NotOnChannel)."""
        room = self._room_of(member, channel)
        event = self._publish(room, "part", member, reason, now)
        self._leave(member, room)
        return event

    def _leave(self, member: User, room: Room) -> None:
        room.members.pop(member.key, None)
        room.ops.discard(member.key)
        member.rooms.pop(room.key, None)
        if not room.members:
            del self.rooms[room.key]
            self._dropped[room.key] = room.log.last_id
            if len(self._dropped) > DROPPED_ROOMS_KEPT:
                del self._dropped[next(iter(self._dropped))]

    def say(self, member: User, channel: str, text: str, now: float,
            kind: str = "message") -> Event:
        """Publish a message or notice to ``channel``; the sender must be a member (+n)."""
        room = self.rooms.get(casefold(channel))
        if room is None:
            raise NoSuchChannel(channel, "No such channel")
        if member.key not in room.members:
            raise CannotSend(room.name, "Cannot send to channel")
        self.messages[member.transport] += 1
        member.last_active = now
        return self._publish(room, kind, member, text, now)

    def set_topic(self, member: User, channel: str, topic: str, now: float) -> Event:
        """Set the topic (+t: operators only); truncated to ``topiclen``."""
        room = self._room_of(member, channel)
        if "t" in room.modes and member.key not in room.ops:
            raise NotChanOp(room.name, "You're not channel operator")
        room.topic = topic[: self.topiclen]
        room.topic_by = member.prefix
        room.topic_ts = now
        return self._publish(room, "topic", member, room.topic, now)

    def tell(self, member: User, nick: str, text: str, now: float,
             kind: str = "message") -> Event:
        """Send a private message or notice to ``nick`` (raises NoSuchNick)."""
        target = self.users.get(casefold(nick))
        if target is None:
            raise NoSuchNick(nick, "No such nick/channel")
        self.messages[member.transport] += 1
        member.last_active = now
        event = self._new_event(target.nick, kind, member, text, now)
        cache: Cache = {}
        if target.sink is not None:
            target.sink.deliver(event, cache)
        target.inbox.append(event, cache)
        return event

    def _room_of(self, member: User, channel: str) -> Room:
        room = self.rooms.get(casefold(channel))
        if room is None:
            raise NoSuchChannel(channel, "No such channel")
        if member.key not in room.members:
            raise NotOnChannel(room.name, "You're not on that channel")
        return room

    def _new_event(self, target: str, kind: str, member: User, text: str, now: float) -> Event:
        self.seq += 1
        return Event(target, self.seq, now, kind, member.nick, member.userhost, text)

    def _publish(self, room: Room, kind: str, member: User, text: str, now: float) -> Event:
        """Number, push to every other member's sink, then store (which wakes watchers)."""
        self.seq += 1
        event = Event(room.name, self.seq, now, kind, member.nick, member.userhost, text)
        # Hot path: one Event, one loop over members, one method call per pushed delivery.
        # The cache lives for this publish only: the history keeps events, not their bytes.
        cache: Cache = {}
        for other in room.members.values():
            sink = other.sink
            if sink is not None and other is not member:
                sink.deliver(event, cache)
        room.log.append(event, cache)
        return event

    def iter_rooms(self) -> Iterator[Room]:
        return iter(self.rooms.values())
