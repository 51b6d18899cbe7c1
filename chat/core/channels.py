"""Running a channel: MODE, KICK and INVITE as Ops of the hub (pure; part of :class:`Hub`).

A mode request arrives parsed (:func:`chat.core.modes.parse_channel_modes`); the proposal
checks that the requester is an operator, the applier carries out every change the state
still allows and publishes what changed as one ``mode`` event.  Changes it had to skip
(a nick that is gone or not in the channel, a full ban list) come back in the
:class:`~chat.core.model.ModeResult` for the requester.
"""

from __future__ import annotations

from typing import ClassVar

from .errors import (
    HubError,
    ListFull,
    NoSuchChannel,
    NoSuchNick,
    NotChanOp,
    UserNotInChannel,
    UserOnChannel,
)
from .events import Event
from .hubcore import INVITES_KEPT, Applier, HubCore
from .model import Ban, ModeResult, Op, Room, User
from .modes import CHANNEL_FLAGS, MAX_BANS, Change, decode_changes, format_changes
from .names import casefold


class ChannelOps(HubCore):
    """MODE, KICK and INVITE: proposals, appliers and the in-memory shortcuts."""

    APPLIERS: ClassVar[dict[str, Applier]] = {}

    # --- proposals -------------------------------------------------------------------------
    def propose_mode(self, member: User, channel: str, changes: list[Change],
                     now: float) -> Op | None:
        """None when there is nothing to change.  Refusals: 403, 482 (not an operator)."""
        room = self.rooms.get(casefold(channel))
        if room is None:
            raise NoSuchChannel(channel, "No such channel")
        if not changes:
            return None
        if member.key not in room.ops:
            raise NotChanOp(room.name, "You're not channel operator")
        modes, params = format_changes(changes)
        return Op("mode", member.nick, room.name, "", now, (modes, *params))

    def propose_kick(self, member: User, channel: str, nick: str, reason: str,
                     now: float) -> Op:
        """Refusals: 403, 442 (kicker not there), 482, 401, 441 (target not there)."""
        room = self._room_of(member, channel)
        if member.key not in room.ops:
            raise NotChanOp(room.name, "You're not channel operator")
        target = self._member_of(room, nick)
        # Two ids: the KICK and a possible operator hand-over (an operator kicking itself).
        return Op("kick", member.nick, room.name, reason or member.nick, now,
                  (target.nick,), ids=2)

    def propose_invite(self, member: User, nick: str, channel: str, now: float) -> Op:
        """Refusals: 401, 403, 442, 443 (already there), 482 (+i and not an operator)."""
        target = self.users.get(casefold(nick))
        if target is None:
            raise NoSuchNick(nick, "No such nick/channel")
        room = self._room_of(member, channel)
        if target.key in room.members:
            raise UserOnChannel(target.nick, "is already on channel", room.name)
        if "i" in room.modes and member.key not in room.ops:
            raise NotChanOp(room.name, "You're not channel operator")
        return Op("invite", member.nick, target.nick, "", now, (room.name,))

    def _member_of(self, room: Room, nick: str) -> User:
        target = self.users.get(casefold(nick))
        if target is None:
            raise NoSuchNick(nick, "No such nick/channel")
        if target.key not in room.members:
            raise UserNotInChannel(target.nick, "They aren't on that channel", room.name)
        return target

    # --- appliers -------------------------------------------------------------------------------
    def _apply_mode(self, op: Op, first_id: int, member: User) -> ModeResult:
        room = self.rooms.get(casefold(op.target))
        if room is None or member.key not in room.ops:
            return ModeResult(None)  # gone, or no longer an operator, meanwhile
        done: list[Change] = []
        refused: list[HubError] = []
        for change in decode_changes(op.args[0], op.args[1:]):
            try:
                applied = self._change(room, change, member, op.ts)
            except HubError as exc:
                refused.append(exc)
                continue
            if applied is not None:
                done.append(applied)
        if not done:
            return ModeResult(None, tuple(refused))
        modes, params = format_changes(done)
        event = Event(room.name, first_id, op.ts, "mode", member.nick, member.userhost,
                      modes, params)
        return ModeResult(self._publish(room, event, member), tuple(refused))

    def _change(self, room: Room, change: Change, member: User, ts: float) -> Change | None:
        """Make one change; the change as made, None if it changed nothing (raises the
        HubError of a change that cannot be made)."""
        mode, adding, param = change.mode, change.adding, change.param
        if mode in CHANNEL_FLAGS:
            if adding == (mode in room.modes):
                return None
            flags = set(room.modes) ^ {mode}
            room.modes = "".join(m for m in CHANNEL_FLAGS if m in flags)
            return change
        if mode == "k":
            if adding == bool(room.password) and (not adding or param == room.password):
                return None
            room.password = param if adding else ""
            return change
        if mode == "l":
            limit = int(param) if adding else 0
            if limit == room.limit:
                return None
            room.limit = limit
            return change
        if mode == "b":
            return self._change_ban(room, change, member, ts)
        return self._change_member(room, change)

    def _change_ban(self, room: Room, change: Change, member: User, ts: float) -> Change | None:
        key = casefold(change.param)
        found = next((b for b in room.bans if casefold(b.mask) == key), None)
        if change.adding:
            if found is not None:
                return None
            if len(room.bans) >= MAX_BANS:
                raise ListFull(room.name, "Channel ban list is full", "b")
            room.bans.append(Ban(change.param, member.prefix, ts))
        else:
            if found is None:
                return None
            room.bans.remove(found)
            return Change(False, "b", found.mask)
        return change

    def _change_member(self, room: Room, change: Change) -> Change | None:
        """+o/-o/+v/-v: the target must still be in the room (401, 441)."""
        target = self._member_of(room, change.param)
        keys = room.ops if change.mode == "o" else room.voices
        if change.adding == (target.key in keys):
            return None
        if change.adding:
            keys.add(target.key)
        else:
            keys.discard(target.key)
        return Change(change.adding, change.mode, target.nick)

    def _apply_kick(self, op: Op, first_id: int, member: User) -> Event | None:
        room = self.rooms.get(casefold(op.target))
        if room is None or member.key not in room.ops:
            return None
        target = room.members.get(casefold(op.args[0]))
        if target is None:
            return None  # left meanwhile
        event = Event(room.name, first_id, op.ts, "kick", member.nick, member.userhost,
                      op.text, (target.nick,))
        self._publish(room, event, member)  # the kicked member sees it too
        self._leave(target, room, first_id + 1, op.ts)
        return event

    def _apply_invite(self, op: Op, first_id: int, member: User) -> Event | None:
        target = self.users.get(casefold(op.target))
        room = self.rooms.get(casefold(op.args[0]))
        if target is None or room is None or target.key in room.members:
            return None
        invited = self.invites.setdefault(target.key, {})
        invited.pop(room.key, None)
        invited[room.key] = None
        if len(invited) > INVITES_KEPT:
            del invited[next(iter(invited))]
        event = Event(room.name, first_id, op.ts, "invite", member.nick, member.userhost,
                      "", (target.nick,))
        cache = self._offer_to_room(room, event, member, ops_only=True)  # invite-notify
        if target.sink is not None:
            target.sink.deliver(event, cache)
        target.inbox.append(event, cache)
        return event

    # --- requests applied at once (the in-memory engine) ---------------------------------------
    def mode(self, member: User, channel: str, changes: list[Change], now: float) -> ModeResult:
        """Change channel modes (raises NoSuchChannel / NotChanOp)."""
        op = self.propose_mode(member, channel, changes, now)
        result: ModeResult = self.run(op) if op is not None else ModeResult(None)
        return result

    def kick(self, member: User, channel: str, nick: str, reason: str, now: float) -> Event:
        event: Event = self.run(self.propose_kick(member, channel, nick, reason, now))
        return event

    def invite(self, member: User, nick: str, channel: str, now: float) -> Event:
        event: Event = self.run(self.propose_invite(member, nick, channel, now))
        return event


ChannelOps.APPLIERS = {"mode": ChannelOps._apply_mode, "kick": ChannelOps._apply_kick,
                       "invite": ChannelOps._apply_invite}
