"""Running a channel: MODE, KICK and INVITE as Ops of the hub (pure; part of :class:`Hub`).

A mode request arrives parsed (:func:`chat.core.modes.parse_channel_modes`); the proposal
checks that the requester is an operator and plans the changes on a scratch copy of the
room's modes: only what would change something goes into the Op, and the changes that
cannot be made (a nick that is not there, a full ban list) come back to the requester in
the :class:`~chat.core.model.ModeResult`.  The applier makes the Op's changes the same
way (skipping what the state no longer allows) and publishes the Op's ``mode`` event.
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
from .model import Ban, ModeResult, Room, User
from .modes import CHANNEL_FLAGS, MAX_BANS, Change, decode_changes, format_changes
from .names import casefold
from .ops import Op, op_events


class ModeState:
    """A room's modes as a scratch copy: a request is planned on one (nothing changes),
    an Op is carried out on one and stored back, so both follow the same rules."""

    __slots__ = ("flags", "password", "limit", "bans", "ops", "voices")

    def __init__(self, room: Room) -> None:
        self.flags = set(room.modes)
        self.password = room.password
        self.limit = room.limit
        self.bans = {casefold(ban.mask): ban for ban in room.bans}
        self.ops = set(room.ops)
        self.voices = set(room.voices)

    def store(self, room: Room) -> None:
        room.modes = "".join(m for m in CHANNEL_FLAGS if m in self.flags)
        room.password, room.limit = self.password, self.limit
        room.bans = list(self.bans.values())
        room.ops, room.voices = self.ops, self.voices


class ChannelOps(HubCore):
    """MODE, KICK and INVITE: proposals, appliers and the in-memory shortcuts."""

    APPLIERS: ClassVar[dict[str, Applier]] = {}

    # --- proposals -------------------------------------------------------------------------
    def propose_mode(self, member: User, channel: str, changes: list[Change], now: float,
                     refused: list[HubError] | None = None) -> Op | None:
        """The changes that would change something, in order, as one Op (None if none).

        Refusals: 403, 482 (not an operator).  Changes that cannot be made (a nick that is
        not there: 401, 441; a full ban list: 478) are left out and added to ``refused``.
        """
        room = self.rooms.get(casefold(channel))
        if room is None:
            raise NoSuchChannel(channel, "No such channel")
        if not changes:
            return None
        if member.key not in room.ops:
            raise NotChanOp(room.name, "You're not channel operator")
        state = ModeState(room)
        planned: list[Change] = []
        for change in changes:
            try:
                done = self._change(room, state, change, member.prefix, now)
            except HubError as exc:
                if refused is not None:
                    refused.append(exc)
                continue
            if done is not None:
                planned.append(done)
        if not planned:
            return None
        modes, params = format_changes(planned)
        return Op("mode", member.nick, room.name, "", now, member.userhost, (modes, *params))

    def propose_kick(self, member: User, channel: str, nick: str, reason: str,
                     now: float) -> Op:
        """Refusals: 403, 442 (kicker not there), 482, 401, 441 (target not there)."""
        room = self._room_of(member, channel)
        if member.key not in room.ops:
            raise NotChanOp(room.name, "You're not channel operator")
        target = self._member_of(room, nick)
        # Two ids: the KICK and a possible operator hand-over (an operator kicking itself).
        return Op("kick", member.nick, room.name, reason or member.nick, now, member.userhost,
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
        return Op("invite", member.nick, target.nick, "", now, member.userhost, (room.name,))

    def _member_of(self, room: Room, nick: str) -> User:
        target = self.users.get(casefold(nick))
        if target is None:
            raise NoSuchNick(nick, "No such nick/channel")
        if target.key not in room.members:
            raise UserNotInChannel(target.nick, "They aren't on that channel", room.name)
        return target

    # --- appliers -------------------------------------------------------------------------------
    def _apply_mode(self, op: Op, first_id: int, member: User) -> ModeResult:
        """Make the Op's changes, skipping what the state no longer allows (a nick that
        left meanwhile); the MODE event is the Op's, as stored."""
        room = self.rooms.get(casefold(op.target))
        if room is None:
            return ModeResult(None)
        state = ModeState(room)
        for change in decode_changes(op.args[0], op.args[1:]):
            try:
                self._change(room, state, change, member.prefix, op.ts)
            except HubError:
                continue
        state.store(room)
        return ModeResult(self._publish(room, op_events(op, first_id)[0], member))

    def _change(self, room: Room, state: ModeState, change: Change, setter: str,
                ts: float) -> Change | None:
        """Make one change on ``state``: the change as made, None if it changes nothing
        (raises the HubError of a change that cannot be made)."""
        mode, adding, param = change.mode, change.adding, change.param
        if mode in CHANNEL_FLAGS:
            if adding == (mode in state.flags):
                return None
            state.flags ^= {mode}
            return change
        if mode == "k":
            if adding == bool(state.password) and (not adding or param == state.password):
                return None
            state.password = param if adding else ""
            return change
        if mode == "l":
            limit = int(param) if adding else 0
            if limit == state.limit:
                return None
            state.limit = limit
            return change
        if mode == "b":
            return self._change_ban(room, state, change, setter, ts)
        return self._change_member(room, state, change)

    @staticmethod
    def _change_ban(room: Room, state: ModeState, change: Change, setter: str,
                    ts: float) -> Change | None:
        key = casefold(change.param)
        found = state.bans.get(key)
        if not change.adding:
            if found is None:
                return None
            del state.bans[key]
            return Change(False, "b", found.mask)
        if found is not None:
            return None
        if len(state.bans) >= MAX_BANS:
            raise ListFull(room.name, "Channel ban list is full", "b")
        state.bans[key] = Ban(change.param, setter, ts)
        return change

    def _change_member(self, room: Room, state: ModeState, change: Change) -> Change | None:
        """+o/-o/+v/-v: the target must be in the room (401, 441)."""
        target = self._member_of(room, change.param)
        keys = state.ops if change.mode == "o" else state.voices
        if change.adding == (target.key in keys):
            return None
        if change.adding:
            keys.add(target.key)
        else:
            keys.discard(target.key)
        return Change(change.adding, change.mode, target.nick)

    def _apply_kick(self, op: Op, first_id: int, member: User) -> Event | None:
        room = self.rooms.get(casefold(op.target))
        if room is None:
            return None
        target = room.members.get(casefold(op.args[0]))
        if target is None:
            return None  # left meanwhile
        event = self._publish(room, op_events(op, first_id)[0], member)  # the kicked see it
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
        event = op_events(op, first_id)[0]
        cache = self._offer_to_room(room, event, member, ops_only=True)  # invite-notify
        if target.sink is not None:
            target.sink.deliver(event, cache)
        target.inbox.append(event, cache)
        return event

    # --- requests applied at once (the in-memory engine) ---------------------------------------
    def mode(self, member: User, channel: str, changes: list[Change], now: float) -> ModeResult:
        """Change channel modes (raises NoSuchChannel / NotChanOp)."""
        refused: list[HubError] = []
        op = self.propose_mode(member, channel, changes, now, refused)
        result: ModeResult = self.run(op) if op is not None else ModeResult(None)
        return result._replace(refused=tuple(refused))

    def kick(self, member: User, channel: str, nick: str, reason: str, now: float) -> Event:
        event: Event = self.run(self.propose_kick(member, channel, nick, reason, now))
        return event

    def invite(self, member: User, nick: str, channel: str, now: float) -> Event:
        event: Event = self.run(self.propose_invite(member, nick, channel, now))
        return event


ChannelOps.APPLIERS = {"mode": ChannelOps._apply_mode, "kick": ChannelOps._apply_kick,
                       "invite": ChannelOps._apply_invite}
