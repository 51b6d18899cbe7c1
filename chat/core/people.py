"""Users and server operators: user modes, OPER, KILL, WALLOPS, SETNAME, CHGHOST as Ops
of the hub (pure; part of :class:`chat.core.hub.Hub`).

The OPER password is checked before the Op is proposed (by the adapter, off the event
loop: scrypt is slow on purpose); the Op only records that the user is now an operator.

A KILL is a quit the victim did not ask for: its applier removes the victim exactly as
:meth:`Hub._apply_quit` does (QUIT ``Killed (<killer> (<reason>))`` to every room,
hand-over of operator status, the nick freed), so a remote engine that special-cases
nick ownership must treat a ``kill`` Op like a ``quit`` of its ``target``.
"""

from __future__ import annotations

import re
from typing import ClassVar

from .errors import InvalidHost, InvalidRealname, NoSuchNick, NotOper
from .events import Event
from .hubcore import Applier, HubCore
from .model import User
from .modes import USER_MODES
from .names import casefold
from .ops import Op, kill_reason, op_events

REALNAME_LEN = 150   # longest realname SETNAME accepts (005 NAMELEN)
HOSTLEN = 63
_USER_RE = re.compile(r"[A-Za-z0-9._~-]{1,16}\Z")
_HOST_RE = re.compile(r"[A-Za-z0-9._:/-]{1,63}\Z")  # HOSTLEN


class PeopleOps(HubCore):
    """User modes and operator commands: proposals, appliers, in-memory shortcuts."""

    APPLIERS: ClassVar[dict[str, Applier]] = {}

    # --- proposals -------------------------------------------------------------------------
    def propose_umode(self, member: User, added: str, removed: str, now: float) -> Op | None:
        """None when nothing changes.  ``added``/``removed`` come from
        :func:`chat.core.modes.parse_user_modes` (so ``+o`` never reaches here)."""
        if not added and not removed:
            return None
        return Op("umode", member.nick, "", "", now, member.userhost, (added, removed), ids=0)

    def propose_oper(self, member: User, name: str, now: float) -> Op:
        """``member`` gave the password of operator ``name`` (already checked)."""
        return Op("oper", member.nick, "", "", now, member.userhost, (name,), ids=0)

    def propose_kill(self, member: User, nick: str, reason: str, now: float) -> Op:
        """Refusals: 481 (not an operator), 401.  Ids: the victim's QUIT in each room, the
        KILL it is sent, then one per room for a possible hand-over."""
        self._need_oper(member)
        target = self.users.get(casefold(nick))
        if target is None:
            raise NoSuchNick(nick, "No such nick/channel")
        rooms = tuple(room.name for room in target.rooms)
        return Op("kill", member.nick, target.nick, reason or member.nick, now,
                  member.userhost, (target.userhost, *rooms), ids=2 * len(rooms) + 1)

    def propose_wallops(self, member: User, text: str, now: float) -> Op:
        self._need_oper(member)
        return Op("wallops", member.nick, "", text, now, member.userhost)

    def propose_setname(self, member: User, realname: str, now: float) -> Op:
        if not realname or len(realname) > REALNAME_LEN:
            raise InvalidRealname("", f"Realname must be 1 to {REALNAME_LEN} characters")
        return Op("setname", member.nick, "", realname, now, member.userhost)

    def propose_chghost(self, member: User, nick: str, user: str, host: str,
                        now: float) -> Op:
        """Refusals: 481, 401, and ``invalid_host`` for an impossible user or host."""
        self._need_oper(member)
        target = self.users.get(casefold(nick))
        if target is None:
            raise NoSuchNick(nick, "No such nick/channel")
        if not _USER_RE.match(user) or not _HOST_RE.match(host):
            raise InvalidHost(target.nick, "Invalid user or host")
        return Op("chghost", member.nick, target.nick, "", now, member.userhost, (user, host))

    @staticmethod
    def _need_oper(member: User) -> None:
        if "o" not in member.modes:
            raise NotOper("", "Permission Denied- You're not an IRC operator")

    # --- appliers -------------------------------------------------------------------------------
    def _apply_umode(self, op: Op, first_id: int, member: User) -> str:
        added, removed = op.args
        have = set(member.modes) - set(removed) | set(added)
        new = "".join(m for m in USER_MODES if m in have)
        plus = "".join(m for m in new if m not in member.modes)
        minus = "".join(m for m in member.modes if m not in new)
        self._set_modes(member, new)
        return (f"+{plus}" if plus else "") + (f"-{minus}" if minus else "")

    def _apply_oper(self, op: Op, first_id: int, member: User) -> None:
        if "o" not in member.modes:
            self._set_modes(member, "".join(m for m in USER_MODES
                                            if m in member.modes or m == "o"))

    def _apply_kill(self, op: Op, first_id: int, member: User) -> list[Event]:
        # A KILL ends exactly like a quit of op.target (QUITs, hand-over, nick freed): a
        # remote engine that tracks nick ownership must release op.target's nick for it.
        victim = self.users.get(casefold(op.target))
        if victim is None:
            return []
        events = op_events(op, first_id)
        quits, kill = events[:-1], events[-1]
        self._fan_out(quits, victim)
        if victim.sink is not None:
            victim.sink.deliver(kill, {})  # the KILL line, before the connection goes
        victim.inbox.append(kill, {})  # a poller's held inbox poll is answered with it
        rooms = op.args[1:]
        self._leave_all(victim, rooms, first_id + len(rooms) + 1, op.ts)
        self._forget(victim, kill_reason(op), op.ts)
        return quits

    def _apply_wallops(self, op: Op, first_id: int, member: User) -> Event:
        event = Event(member.nick, first_id, op.ts, "wallops", member.nick, member.userhost,
                      op.text)
        cache: dict[object, bytes] = {}
        for other in self.users.values():  # rare: a scan beats an index kept for it
            if "w" in other.modes and other.sink is not None and other is not member:
                other.sink.deliver(event, cache)
        return event

    def _apply_setname(self, op: Op, first_id: int, member: User) -> Event:
        member.realname = op.text
        event = Event(member.nick, first_id, op.ts, "setname", member.nick, member.userhost,
                      op.text)
        self._offer_to_peers(member, event)
        return event

    def _apply_chghost(self, op: Op, first_id: int, member: User) -> Event | None:
        target = self.users.get(casefold(op.target))
        if target is None:
            return None
        user, host = op.args
        event = Event(target.nick, first_id, op.ts, "chghost", target.nick, target.userhost,
                      "", (user, host))
        target.user, target.host, target.userhost = user, host, f"{user}@{host}"
        self._offer_to_peers(target, event, itself=True)
        return event

    # --- requests applied at once (the in-memory engine) ---------------------------------------
    def set_user_modes(self, member: User, added: str, removed: str, now: float) -> str:
        op = self.propose_umode(member, added, removed, now)
        result: str = self.run(op) if op is not None else ""
        return result

    def oper(self, member: User, name: str, now: float) -> None:
        self.run(self.propose_oper(member, name, now))

    def kill(self, member: User, nick: str, reason: str, now: float) -> list[Event]:
        events: list[Event] = self.run(self.propose_kill(member, nick, reason, now))
        return events

    def wallops(self, member: User, text: str, now: float) -> Event:
        event: Event = self.run(self.propose_wallops(member, text, now))
        return event

    def setname(self, member: User, realname: str, now: float) -> Event:
        event: Event = self.run(self.propose_setname(member, realname, now))
        return event

    def chghost(self, member: User, nick: str, user: str, host: str, now: float) -> Event:
        event: Event = self.run(self.propose_chghost(member, nick, user, host, now))
        return event


PeopleOps.APPLIERS = {
    "umode": PeopleOps._apply_umode, "oper": PeopleOps._apply_oper,
    "kill": PeopleOps._apply_kill, "wallops": PeopleOps._apply_wallops,
    "setname": PeopleOps._apply_setname, "chghost": PeopleOps._apply_chghost,
}
