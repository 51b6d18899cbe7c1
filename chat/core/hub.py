"""The hub: users, rooms, bounded per-room history and presence, shared by every transport.

No I/O and no clock: every change takes ``now`` (wall-clock unix seconds, for event
timestamps) from its caller.  The hub is a state machine of :class:`~chat.core.model.Op`
values: ``propose_<x>`` checks a request against the current state (raising a
:class:`~chat.core.errors.HubError`) and returns the Op; :meth:`Hub.apply` carries it out
through the :data:`APPLY` table, the same way on every node.  This module has the
requests of presence and conversation; :mod:`chat.core.channels` adds channel moderation
(MODE, KICK, INVITE) and :mod:`chat.core.people` user modes and server operators.

Delivery is push-based through a :class:`~chat.core.model.Sink` each user may carry (an
IRC connection), and pull-based through each room's :class:`~chat.core.log.EventLog`
(HTTP polls read it; long polls and SSE streams register one-shot watchers).

Rules the adapters rely on:

* Every room event gets an id from one hub-wide counter, so ids are strictly increasing
  within every room and across a room that was emptied, dropped and created again.
  Private messages take ids from the same counter and go to the recipient's inbox log.
* The hub never delivers an event to the user who caused it: echoing (IRC JOIN/PART/NICK
  echo, echo-message) is the adapter's business.
* A QUIT or NICK change is one event per shared room, but each co-member is sent it once.
* One publish hands one fresh :data:`~chat.core.events.Cache` to every sink and watcher it
  reaches, so a line is encoded once per variant however many members receive it.
* Sending a message or a notice marks the sender active (``User.last_active``).
* Validation lives in ``propose_*``; an applier only skips what the state no longer
  allows (a member who left, an actor who lost operator status meanwhile).

Apply results: register -> User; join -> Joined; rename, quit, kill -> list of events;
part, message, notice, tell, tagmsg, topic, kick, invite, wallops, setname, chghost ->
Event | None; mode -> ModeResult; umode -> the change made (``+i-w``, "" for none);
away, oper -> None.
"""

from __future__ import annotations

from typing import Any

from .channels import ChannelOps
from .errors import (
    BadChannelKey,
    Banned,
    CannotSend,
    ChannelFull,
    ChannelInvalid,
    HubError,
    InviteOnly,
    NickInUse,
    NickInvalid,
    NoSuchChannel,
    NoSuchNick,
    NotChanOp,
    NotOnChannel,
    TooManyChannels,
)
from .events import KINDS, Event
from .hubcore import Applier
from .log import EventLog, Watcher
from .model import Joined, Room, Sink, User
from .names import casefold, valid_channel, valid_nick
from .ops import Op, op_events, op_from_list, tag_dict
from .people import PeopleOps

__all__ = ["KINDS", "CannotSend", "ChannelInvalid", "Event", "EventLog", "Hub", "HubError",
           "Joined", "NickInUse", "NickInvalid", "NoSuchChannel", "NoSuchNick", "NotChanOp",
           "NotOnChannel", "Op", "Room", "Sink", "TooManyChannels", "User", "Watcher",
           "op_events", "op_from_list"]


class Hub(ChannelOps, PeopleOps):
    """All users and rooms one node knows: a state machine fed with :class:`Op` values.

    The methods named after the requests (``join``, ``say``, ...) propose and apply with
    the hub's own id counter, which is what the in-memory engine does.
    """

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
        rooms = tuple(room.name for room in member.rooms)
        return Op("rename", member.nick, new_nick, "", now, member.userhost, rooms,
                  ids=len(rooms))

    def propose_quit(self, member: User, reason: str, now: float) -> Op | None:
        """None when ``member`` is not (any more) a user of this hub.

        Two ids per room: the QUITs first, then one per room for a possible operator
        hand-over.
        """
        if self.users.get(member.key) is not member:
            return None
        rooms = tuple(room.name for room in member.rooms)
        return Op("quit", member.nick, "", reason, now, member.userhost, rooms,
                  ids=2 * len(rooms))

    def propose_join(self, member: User, channel: str, now: float, key: str = "") -> Op | None:
        """None when ``member`` is in ``channel`` already.  Refusals: 403 name, 405, 474
        banned, 473 invite-only, 475 key, 471 full (an invitation passes +i, +k and +l)."""
        room = self.rooms.get(casefold(channel))
        if room is not None and member.key in room.members:
            return None
        if room is None and not valid_channel(channel, self.channellen):
            raise ChannelInvalid(channel, "Illegal channel name")
        if len(member.rooms) >= self.max_channels:
            raise TooManyChannels(channel, "You have joined too many channels")
        if room is not None:
            self._check_entry(room, member, key)
        ids = 2 if member.away is not None else 1  # the JOIN, and an AWAY for away-notify
        name = room.name if room is not None else channel
        # The realname rides along for extended-join; the key was checked here, so it
        # is not replicated.
        return Op("join", member.nick, name, "", now, member.userhost, (member.realname,),
                  ids=ids)

    def _check_entry(self, room: Room, member: User, key: str) -> None:
        if room.banned(member):
            raise Banned(room.name, "Cannot join channel (+b)")
        if room.key in self.invites.get(member.key, ()):
            return
        if "i" in room.modes:
            raise InviteOnly(room.name, "Cannot join channel (+i)")
        if room.password and key != room.password:
            raise BadChannelKey(room.name, "Cannot join channel (+k)")
        if room.limit and len(room.members) >= room.limit:
            raise ChannelFull(room.name, "Cannot join channel (+l)")

    def propose_part(self, member: User, channel: str, reason: str, now: float) -> Op:
        room = self._room_of(member, channel)
        return Op("part", member.nick, room.name, reason, now, member.userhost, ids=2)

    def propose_say(self, member: User, channel: str, text: str, now: float,
                    kind: str = "message", tags: tuple[str, ...] = ()) -> Op:
        """A message, notice or (``kind`` tagmsg) tag-only message to a channel."""
        room = self.rooms.get(casefold(channel))
        if room is None:
            raise NoSuchChannel(channel, "No such channel")
        if not room.may_speak(member):
            raise CannotSend(room.name, _why_not(room, member))
        return Op(kind, member.nick, room.name, text, now, member.userhost, tags)

    def propose_topic(self, member: User, channel: str, topic: str, now: float) -> Op:
        room = self._room_of(member, channel)
        if "t" in room.modes and member.key not in room.ops:
            raise NotChanOp(room.name, "You're not channel operator")
        return Op("topic", member.nick, room.name, topic[: self.topiclen], now,
                  member.userhost)

    def propose_tell(self, member: User, nick: str, text: str, now: float,
                     kind: str = "message", tags: tuple[str, ...] = ()) -> Op:
        """A private message, notice or (``kind`` tagmsg) tag-only message."""
        target = self.users.get(casefold(nick))
        if target is None:
            raise NoSuchNick(nick, "No such nick/channel")
        return Op("tell", member.nick, target.nick, text, now, member.userhost, (kind, *tags))

    def propose_away(self, member: User, text: str | None, now: float) -> Op:
        return Op("away", member.nick, "", text or "", now, member.userhost,
                  ("1" if text else "",))

    # --- applying: the same Op gives the same state on every node ------------------------------
    def _apply_rename(self, op: Op, first_id: int, member: User) -> list[Event]:
        new_nick = op.target
        new_key = casefold(new_nick)
        old_key = member.key
        events = op_events(op, first_id)
        self._fan_out(events, member)
        self._remember(member, op.ts)
        del self.users[old_key]
        for room in member.rooms:
            # Rebuilt rather than moved to the end: the joining order decides who is
            # made operator when the last one leaves, and a nick change keeps one's place.
            room.members = {(new_key if k == old_key else k): v
                            for k, v in room.members.items()}
            for keys in (room.ops, room.voices):
                if old_key in keys:
                    keys.discard(old_key)
                    keys.add(new_key)
        for token, key in list(self.tokens.items()):
            if key == old_key:
                self.tokens[token] = new_key
        if old_key in self.invites:
            self.invites[new_key] = self.invites.pop(old_key)
        member.nick, member.key = new_nick, new_key
        self.users[new_key] = member
        return events

    def _apply_quit(self, op: Op, first_id: int, member: User) -> list[Event]:
        events = op_events(op, first_id)
        self._fan_out(events, member)
        self._leave_all(member, op.args, first_id + len(op.args), op.ts)
        self._forget(member, op.text, op.ts)
        return events

    def _apply_join(self, op: Op, first_id: int, member: User) -> Joined:
        key = casefold(op.target)
        room = self.rooms.get(key)
        if room is not None and member.key in room.members:
            return Joined(room, None)
        if room is None:
            room = Room(op.target, op.ts, self._log_for(key))
            self.rooms[key] = room
            room.ops.add(member.key)  # the creator is operator
        invited = self.invites.get(member.key)
        if invited is not None and room.key in invited:  # an invitation is used up
            del invited[room.key]
            if not invited:
                del self.invites[member.key]
        room.members[member.key] = member
        member.add_room(room)
        event = self._publish(room, op_events(op, first_id)[0], member)
        if op.ids > 1 and member.away is not None:
            away = Event(room.name, first_id + 1, op.ts, "away", member.nick,
                         member.userhost, member.away)
            self._offer_to_room(room, away, member)
        return Joined(room, event)

    def _apply_part(self, op: Op, first_id: int, member: User) -> Event | None:
        room = member.room(casefold(op.target))
        if room is None:
            return None
        event = self._publish(room, op_events(op, first_id)[0], member)
        self._leave(member, room, first_id + 1, op.ts)
        return event

    def _apply_say(self, op: Op, first_id: int, member: User) -> Event | None:
        room = self.rooms.get(casefold(op.target))
        if room is None:
            return None
        self.messages[member.transport] = self.messages.get(member.transport, 0) + 1
        member.last_active = op.ts
        return self._publish(room, op_events(op, first_id)[0], member)

    def _apply_tagmsg(self, op: Op, first_id: int, member: User) -> Event | None:
        """A TAGMSG to a channel: offered to members, never kept in the history."""
        room = self.rooms.get(casefold(op.target))
        if room is None:
            return None
        event = Event(room.name, first_id, op.ts, "tagmsg", member.nick, op.userhost, "",
                      (), tag_dict(op.args))
        room.log.notify(event, self._offer_to_room(room, event, member))
        return event

    def _apply_topic(self, op: Op, first_id: int, member: User) -> Event | None:
        room = self.rooms.get(casefold(op.target))
        if room is None:
            return None
        room.topic = op.text
        room.topic_by = member.prefix
        room.topic_ts = op.ts
        return self._publish(room, op_events(op, first_id)[0], member)

    def _apply_tell(self, op: Op, first_id: int, member: User) -> Event | None:
        target = self.users.get(casefold(op.target))
        if target is None:
            return None
        member.last_active = op.ts
        cache: dict[Any, bytes] = {}
        if op.args[0] == "tagmsg":  # relayed to who wants it, never kept
            event = Event(target.nick, first_id, op.ts, "tagmsg", member.nick, op.userhost,
                          "", (), tag_dict(op.args[1:]))
            if target.sink is not None:
                target.sink.offer(event, cache)
            target.inbox.notify(event, cache)
            return event
        self.messages[member.transport] = self.messages.get(member.transport, 0) + 1
        event = op_events(op, first_id)[0]
        if target.sink is not None:
            target.sink.deliver(event, cache)
        target.inbox.append(event, cache)
        return event

    def _apply_away(self, op: Op, first_id: int, member: User) -> None:
        member.away = op.text if op.args[0] else None
        if member.rooms:
            self._offer_to_peers(member, Event(member.nick, first_id, op.ts, "away",
                                               member.nick, member.userhost, op.text))

    # --- requests applied at once (the in-memory engine) ---------------------------------------
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

    def join(self, member: User, channel: str, now: float, key: str = "") -> Joined:
        """Add ``member`` to ``channel`` (created on first join, creator becomes operator).

        Returns the room and the join event, or None as the event if already a member.
        """
        op = self.propose_join(member, channel, now, key)
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
            kind: str = "message", tags: tuple[str, ...] = ()) -> Event:
        """Publish a message or notice to ``channel`` (as its modes allow: 404)."""
        event: Event = self.run(self.propose_say(member, channel, text, now, kind, tags))
        return event

    def set_topic(self, member: User, channel: str, topic: str, now: float) -> Event:
        """Set the topic (+t: operators only); truncated to ``topiclen``."""
        event: Event = self.run(self.propose_topic(member, channel, topic, now))
        return event

    def tell(self, member: User, nick: str, text: str, now: float,
             kind: str = "message", tags: tuple[str, ...] = ()) -> Event:
        """Send a private message or notice to ``nick`` (raises NoSuchNick)."""
        event: Event = self.run(self.propose_tell(member, nick, text, now, kind, tags))
        return event

    def set_away(self, member: User, text: str | None, now: float) -> None:
        self.run(self.propose_away(member, text, now))


def _why_not(room: Room, member: User) -> str:
    if member.key not in room.members and "n" in room.modes:
        return "Cannot send to channel (no external messages)"
    if room.banned(member):
        return "Cannot send to channel (you're banned)"
    return "Cannot send to channel (+m)"


Hub.APPLY = {
    "rename": Hub._apply_rename, "quit": Hub._apply_quit, "join": Hub._apply_join,
    "part": Hub._apply_part, "message": Hub._apply_say, "notice": Hub._apply_say,
    "tagmsg": Hub._apply_tagmsg, "topic": Hub._apply_topic, "tell": Hub._apply_tell,
    "away": Hub._apply_away, **ChannelOps.APPLIERS, **PeopleOps.APPLIERS,
}
APPLY: dict[str, Applier] = Hub.APPLY
