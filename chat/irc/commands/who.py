"""Finding people and channels: WHO (with WHOX) and LIST (with ELIST filters) (pure).

WHO takes a channel, a nick, or a mask with ``*`` and ``?`` matched against nick, user,
host, realname and ``nick!user@host``; ``*`` and ``0`` mean everyone.  Invisible users
(+i) show only to those sharing a channel with them, secret channels only to members.
``WHO <mask> %<fields>[,<token>]`` answers 354 with the fields asked for (WHOX, in the
order ``tcuihsnfdlaor``).  At most :data:`WHO_LIMIT` users are listed per query.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from ...core.clock import Now
from ...core.hub import Room, User
from ...core.modes import mask_pattern
from ...core.names import casefold
from .. import numerics as N
from ..caps import CAP_MULTI_PREFIX
from ..message import Message
from ..session import Session
from .table import Command

WHO_LIMIT = 500
WHOX_FIELDS = "tcuihsnfdlaor"
_IP_RE = re.compile(r"[0-9.]+\Z|[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*\Z")


def cmd_who(s: Session, msg: Message, now: Now) -> None:
    mask = msg.params[0] if msg.params else "*"
    fields, token = "", ""
    if len(msg.params) > 1 and msg.params[1].startswith("%"):
        fields, _, token = msg.params[1][1:].partition(",")
    opers_only = len(msg.params) > 1 and msg.params[1].split("%")[0] == "o"
    for count, (member, room) in enumerate(_who_matches(s, mask)):
        if count >= WHO_LIMIT:
            break
        if opers_only and not member.oper:
            continue
        if fields:
            _whox_line(s, member, room, fields, token, now)
        else:
            s.reply(N.RPL_WHOREPLY, room.name if room else "*", member.user, member.host,
                    s.info.name, member.nick, _flags(s, member, room),
                    f"0 {member.realname}")
    s.reply(N.RPL_ENDOFWHO, mask, "End of WHO list")


def _who_matches(s: Session, mask: str) -> Iterator[tuple[User, Room | None]]:
    asker = s.user
    assert asker is not None
    if mask.startswith("#"):
        room = s.engine.find_room(mask)
        if room is not None and (asker.key in room.members or not room.secret):
            inside = asker.key in room.members
            for member in room.members.values():
                if inside or not member.invisible:
                    yield member, room
        return
    if "*" not in mask and "?" not in mask and mask != "0":
        found = s.engine.find_user(mask)
        if found is not None:
            yield found, None
        return
    pattern = mask_pattern("*" if mask == "0" else mask)
    for member in s.engine.users():
        if _visible(asker, member) and any(pattern.match(value) for value in _keys(member)):
            yield member, None


def _visible(asker: User, member: User) -> bool:
    return (not member.invisible or member is asker
            or any(room in asker.rooms for room in member.rooms))


def _keys(member: User) -> Iterable[str]:
    return (casefold(member.nick), casefold(member.user), casefold(member.host),
            casefold(member.realname), casefold(member.prefix))


def _flags(s: Session, member: User, room: Room | None) -> str:
    """``H``/``G`` (here, gone), ``*`` for an operator, then the channel prefixes."""
    flags = ("G" if member.away is not None else "H") + ("*" if member.oper else "")
    if room is not None:
        prefixes = room.prefixes(member)
        flags += prefixes if s.caps & CAP_MULTI_PREFIX else prefixes[:1]
    return flags


def _whox_line(s: Session, member: User, room: Room | None, fields: str, token: str,
               now: Now) -> None:
    values = {
        "t": token or "0", "c": room.name if room else "*", "u": member.user,
        "i": member.host if _IP_RE.match(member.host) else "255.255.255.255",
        "h": member.host, "s": s.info.name, "n": member.nick,
        "f": _flags(s, member, room), "d": "0",
        "l": str(max(0, int(now.wall - member.last_active))), "a": "0", "o": "n/a",
        "r": member.realname,
    }
    params = [values[f] for f in WHOX_FIELDS if f in fields]
    if params:
        s.reply(N.RPL_WHOSPCRPL, *params, trailing="r" in fields)


def cmd_list(s: Session, msg: Message, now: Now) -> None:
    """LIST [#a,#b] [conditions]: 321, a 322 per visible channel, 323.

    Conditions (005 ``ELIST=CMNTU``): ``>n``/``<n`` members, ``C>n``/``C<n`` created more
    / less than n minutes ago, ``T>n``/``T<n`` topic set more / less than n minutes ago,
    a mask (``*chat*``) and a negated mask (``!*test*``).
    """
    user = s.user
    assert user is not None
    wanted: set[str] = set()
    conditions: list[str] = []
    for param in msg.params[:2]:
        for item in param.split(","):
            if item.startswith("#"):
                wanted.add(casefold(item))
            elif item:
                conditions.append(item)
    s.reply(N.RPL_LISTSTART, "Channel", "Users  Name")
    for room in s.engine.rooms():
        if room.secret and user.key not in room.members:
            continue
        if wanted and room.key not in wanted:
            continue
        if all(_meets(room, c, now.wall) for c in conditions):
            s.reply(N.RPL_LIST, room.name, str(len(room.members)), room.topic)
    s.reply(N.RPL_LISTEND, "End of /LIST")


def _meets(room: Room, condition: str, wall: float) -> bool:
    """Whether ``room`` passes one ELIST condition (an unparsable one passes)."""
    kind = condition[0].upper() if condition[0] in "CcTtUu" and len(condition) > 1 else ""
    rest = condition[1:] if kind else condition
    if rest[:1] in "<>" and rest[1:].isdigit():
        limit = int(rest[1:])
        if kind in ("", "U"):
            value = float(len(room.members))
        else:
            when = room.created if kind == "C" else room.topic_ts
            value = (wall - when) / 60 if when else float("inf")
        return value > limit if rest[0] == ">" else value < limit
    if condition.startswith("!"):
        return mask_pattern(condition[1:]).match(room.key) is None
    return mask_pattern(condition).match(room.key) is not None


COMMANDS = {
    "WHO": Command(cmd_who),
    "LIST": Command(cmd_list),
}
