"""The hub's state and the helpers every applier shares (pure).

:class:`HubCore` holds the users, rooms, id counter, invitations and WHOWAS memory, and the
small operations the appliers of :mod:`chat.core.hub`, :mod:`chat.core.channels` and
:mod:`chat.core.people` are made of: publishing an event to a room, telling each peer of a
user once, and leaving a room (with the operator hand-over rule).

**Operator hand-over.** When the last operator of a room that still has members leaves it
(part, quit, kick, kill; a nick change does not count), the member present longest is
made operator by the server: every member sees ``:<server> MODE #room +o <nick>`` and
pollers get a ``mode`` event.  It happens inside the leaving Op's apply, with an event id
that Op reserved, so every node makes the same member operator.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

from .errors import NickInUse, NickInvalid, NoSuchChannel, NotOnChannel
from .events import Cache, Event
from .log import EventLog
from .model import Census, Room, Sink, User, WhoWas
from .names import casefold, valid_nick
from .ops import Op

DROPPED_ROOMS_KEPT = 4096  # emptied rooms whose last id is remembered for gap reports
WHOWAS_KEPT = 1024         # nicks WHOWAS remembers, newest first
INVITES_KEPT = 64          # pending invitations one user may hold (the oldest is dropped)

Applier = Callable[[Any, Op, int, User], Any]


class HubCore:
    """Users, rooms and the shared helpers; :class:`chat.core.hub.Hub` adds the requests.

    With ``keep_dormant`` an emptied room keeps its history log (a shared store has it
    anyway) and a room created again continues it; otherwise only its last id is kept, so
    a stale cursor is told it has a gap.
    """

    APPLY: ClassVar[dict[str, Applier]] = {}  # Op kind -> applier, filled in by Hub

    def __init__(self, *, history: int = 1000, nicklen: int = 30, channellen: int = 64,
                 topiclen: int = 390, max_channels: int = 50, epoch: int = 0,
                 keep_dormant: bool = False, server_name: str = "chat.local") -> None:
        self.history = history
        self.nicklen = nicklen
        self.channellen = channellen
        self.topiclen = topiclen
        self.max_channels = max_channels
        self.epoch = epoch          # identifies this store's run (see the engines)
        self.keep_dormant = keep_dormant
        self.server_name = server_name  # the source of the server's own events
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
        # Invitations by invited user key -> room keys (a dict as an ordered set): only
        # the few invited users cost anything.
        self.invites: dict[str, dict[str, None]] = {}
        self.whowas: deque[WhoWas] = deque(maxlen=WHOWAS_KEPT)
        self.max_users = 0          # the most users seen at once (LUSERS 265/266)
        self.invisible = 0          # users with +i (LUSERS 251)
        self.opers = 0              # users with +o (LUSERS 252)

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

    def census(self) -> Census:
        return Census(len(self.users), self.invisible, self.opers, len(self.rooms),
                      self.max_users)

    def invited_to(self, member: User) -> list[str]:
        """The rooms ``member`` holds an invitation to (their names, oldest first)."""
        rooms = (self.rooms.get(key) for key in self.invites.get(member.key, ()))
        return [room.name for room in rooms if room is not None]

    def was(self, nick: str) -> list[WhoWas]:
        """WHOWAS entries for ``nick``, newest first."""
        key = casefold(nick)
        return [entry for entry in reversed(self.whowas) if casefold(entry.nick) == key]

    def _room_of(self, member: User, channel: str) -> Room:
        room = self.rooms.get(casefold(channel))
        if room is None:
            raise NoSuchChannel(channel, "No such channel")
        if member.key not in room.members:
            raise NotOnChannel(room.name, "You're not on that channel")
        return room

    # --- applying ----------------------------------------------------------------------------
    def apply(self, op: Op, first_id: int, sink: Sink | None = None) -> Any:
        """Carry ``op`` out with event ids from ``first_id``; its result for the proposer.

        Results by kind are listed in :mod:`chat.core.hub`.  An Op whose actor has gone
        meanwhile (another node's change came first) does nothing.  ``sink`` is the
        proposer's connection, for a register made on this node.
        """
        if op.ids:
            self.seq = max(self.seq, first_id + op.ids - 1)
        if op.kind == "register":
            return self._register(op, sink)
        member = self.users.get(casefold(op.actor))
        if member is None:
            return [] if op.kind in ("quit", "rename", "kill") else None
        return self.APPLY[op.kind](self, op, first_id, member)

    def run(self, op: Op, sink: Sink | None = None) -> Any:
        """Number ``op`` with this hub's counter and apply it (the in-memory engine)."""
        return self.apply(op, self.seq + 1, sink)

    def _register(self, op: Op, sink: Sink | None) -> User:
        user, host, realname, transport, node, token_hash = op.args
        # Push users (IRC, WebSocket) have private messages pushed, never kept: one shared
        # log that keeps nothing stands in for their inbox (a deque each costs ~0.8 KiB).
        inbox = EventLog(self.history, 0) if transport == "http" else self.pushed_inbox
        member = User(op.actor, user, host, realname, transport, sink, op.ts, inbox, node)
        self.users[member.key] = member
        if token_hash:
            self.tokens[token_hash] = member.key
        self.max_users = max(self.max_users, len(self.users))
        return member

    # --- helpers -----------------------------------------------------------------------------
    def _publish(self, room: Room, event: Event, skip: User | None) -> Event:
        """Push ``event`` to every member's sink but ``skip``'s, then store it (which
        wakes the watchers)."""
        # Hot path: one loop over members, one method call per pushed delivery.  The cache
        # lives for this publish only: the history keeps events, not their bytes.
        cache: Cache = {}
        for other in room.members.values():
            sink = other.sink
            if sink is not None and other is not skip:
                sink.deliver(event, cache)
        room.log.append(event, cache)
        return event

    def _fan_out(self, events: list[Event], member: User) -> None:
        """Store each event in its room (if the room exists); a co-member of several of the
        rooms is pushed the first one only."""
        told: set[str] = {member.key}
        for event in events:
            room = self.rooms.get(casefold(event.target))
            if room is None:
                continue  # gone meanwhile: the id goes unused
            cache: Cache = {}
            for key, other in room.members.items():
                if key not in told:
                    told.add(key)
                    if other.sink is not None:
                        other.sink.deliver(event, cache)
            room.log.append(event, cache)

    def _offer_to_peers(self, member: User, event: Event, itself: bool = False) -> None:
        """Offer a transient ``event`` to everyone sharing a room with ``member`` (once
        each), and to ``member`` too with ``itself``."""
        cache: Cache = {}
        told: set[str] = {member.key}
        if itself and member.sink is not None:
            member.sink.offer(event, cache)
        for room in member.rooms:
            for key, other in room.members.items():
                if key not in told:
                    told.add(key)
                    if other.sink is not None:
                        other.sink.offer(event, cache)

    def _offer_to_room(self, room: Room, event: Event, skip: User | None,
                       ops_only: bool = False) -> Cache:
        """Offer a transient ``event`` to the members of ``room`` but ``skip`` (only to
        its operators with ``ops_only``); the publish's cache, for watchers."""
        cache: Cache = {}
        for other in room.members.values():
            sink = other.sink
            if sink is not None and other is not skip and (not ops_only
                                                           or other.key in room.ops):
                sink.offer(event, cache)
        return cache

    def _leave_all(self, member: User, rooms: tuple[str, ...], handover_id: int,
                   ts: float) -> None:
        """Take ``member`` out of every room: those named in ``rooms`` (a quit's or a
        kill's) with the hand-over ids reserved from ``handover_id`` on, one per room."""
        for index, name in enumerate(rooms):
            room = member.room(casefold(name))
            if room is not None:
                self._leave(member, room, handover_id + index, ts)
        for room in member.rooms:  # joined after the Op was proposed
            self._leave(member, room, None, ts)

    def _leave(self, member: User, room: Room, handover_id: int | None, ts: float) -> None:
        """Take ``member`` out of ``room``: drop an emptied room, or hand the operator
        status on (event ``handover_id``) if they were its last operator.  Without an id
        reserved for it (a room joined after the leaving Op was proposed) no one is
        made operator.  The hand-over depends on the state, not on the Op alone, so its
        MODE event is pushed (to sinks and waiting watchers), never stored."""
        was_op = member.key in room.ops
        room.members.pop(member.key, None)
        room.ops.discard(member.key)
        room.voices.discard(member.key)
        member.drop_room(room)
        if not room.members:
            self._drop(room)
        elif was_op and not room.ops and handover_id is not None:
            heir = next(iter(room.members.values()))  # members are kept in joining order
            room.ops.add(heir.key)
            event = Event(room.name, handover_id, ts, "mode", self.server_name, "", "+o",
                          (heir.nick,))
            cache: Cache = {}
            for other in room.members.values():
                if other.sink is not None:
                    other.sink.deliver(event, cache)
            room.log.notify(event, cache)

    def _drop(self, room: Room) -> None:
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
        # A room made again later starts without the old invitations.
        for key in [k for k, rooms in self.invites.items() if room.key in rooms]:
            rooms = self.invites[key]
            del rooms[room.key]
            if not rooms:
                del self.invites[key]

    def _log_for(self, key: str) -> EventLog:
        """The log of a room being created: its dormant one, or a new one that continues
        from where a dropped room of that name ended (so stale cursors see a gap)."""
        log = self.dormant.pop(key, None)
        if log is not None:
            return log
        return EventLog(self.history, self._dropped.pop(key, 0))

    def _forget(self, member: User, reason: str, ts: float) -> None:
        """``member`` leaves the server (quit, kill): counters, invitations, WHOWAS,
        session tokens; its sink hears it was dropped (a no-op if it asked to quit)."""
        self.invites.pop(member.key, None)
        self._remember(member, ts)
        self.invisible -= "i" in member.modes
        self.opers -= "o" in member.modes
        del self.users[member.key]
        if member.transport == "http":
            for token in [t for t, key in self.tokens.items() if key == member.key]:
                del self.tokens[token]
        sink, member.sink = member.sink, None
        if sink is not None:
            sink.dropped(reason)

    def _remember(self, member: User, ts: float) -> None:
        self.whowas.append(WhoWas(member.nick, member.user, member.host, member.realname, ts))

    def _set_modes(self, member: User, modes: str) -> None:
        """Give ``member`` exactly the user modes ``modes`` (and keep the counters)."""
        self.invisible += ("i" in modes) - ("i" in member.modes)
        self.opers += ("o" in modes) - ("o" in member.modes)
        member.modes = modes
