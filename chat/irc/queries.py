"""Informational IRC commands and CHATHISTORY, for :class:`chat.irc.session.Session` (pure).

These are what real clients send around registration and joins (MODE queries, WHO,
WHOIS, USERHOST, ISON, LIST, ...) so that irssi or weechat show no errors, plus the
IRCv3 ``draft/chathistory`` command that lets a client resume after a reconnect.
Each ``cmd_*`` takes the session, the parsed message and ``now``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ..core.hub import Event, Room, User
from . import numerics as N
from .caps import (
    AWAYLEN,
    CAP_BATCH,
    CAP_EVENT_PLAYBACK,
    CAP_USERHOST_IN_NAMES,
    CHATHISTORY_MAX,
    VERSION,
)
from .events import batched_event
from .history import SUBCOMMANDS, HistoryError, Ref, parse_limit, parse_ref, select
from .message import format_line, server_time

if TYPE_CHECKING:
    from .message import Message
    from .session import Session

NAMES_WIDTH = 400  # bytes of nicks per 353 line, well under the 512-byte line limit


def send_names(s: Session, room: Room) -> None:
    """353 lines (split to fit) and 366 for ``room``."""
    full = s.caps & CAP_USERHOST_IN_NAMES
    line: list[str] = []
    width = 0
    for member in room.members.values():
        name = room.nick_with_prefix(member)
        if full:
            name = f"{name}!{member.userhost}"
        if line and width + len(name) > NAMES_WIDTH:
            s.reply(N.RPL_NAMREPLY, "=", room.name, " ".join(line), trailing=True)
            line, width = [], 0
        line.append(name)
        width += len(name) + 1
    if line:
        s.reply(N.RPL_NAMREPLY, "=", room.name, " ".join(line), trailing=True)
    s.reply(N.RPL_ENDOFNAMES, room.name, "End of /NAMES list")


def cmd_names(s: Session, msg: Message, now: float) -> None:
    if not msg.params:
        s.reply(N.RPL_ENDOFNAMES, "*", "End of /NAMES list")
        return
    for channel in msg.params[0].split(","):
        room = s.hub.find_room(channel)
        if room is None:
            s.reply(N.RPL_ENDOFNAMES, channel, "End of /NAMES list")
        else:
            send_names(s, room)


def _who_line(s: Session, member: User, channel: str, room: Room | None) -> None:
    flags = "G" if member.away is not None else "H"
    if room is not None and room.is_op(member):
        flags += "@"
    s.reply(N.RPL_WHOREPLY, channel, member.user, member.host, s.info.name, member.nick,
            flags, f"0 {member.realname}")


def cmd_who(s: Session, msg: Message, now: float) -> None:
    mask = msg.params[0] if msg.params else "*"
    if mask.startswith("#"):
        room = s.hub.find_room(mask)
        if room is not None:
            for member in room.members.values():
                _who_line(s, member, room.name, room)
    else:
        found = s.hub.find_user(mask)
        if found is not None:
            _who_line(s, found, "*", None)
    s.reply(N.RPL_ENDOFWHO, mask, "End of WHO list")


def cmd_whois(s: Session, msg: Message, now: float) -> None:
    if not msg.params or not msg.params[-1]:
        s.reply(N.ERR_NONICKNAMEGIVEN, "No nickname given")
        return
    nick = msg.params[-1].split(",")[0]
    member = s.hub.find_user(nick)
    if member is None:
        s.reply(N.ERR_NOSUCHNICK, nick, "No such nick/channel")
        s.reply(N.RPL_ENDOFWHOIS, nick, "End of /WHOIS list")
        return
    s.reply(N.RPL_WHOISUSER, member.nick, member.user, member.host, "*", member.realname)
    if member.rooms:
        rooms = " ".join(("@" if room.is_op(member) else "") + room.name
                         for room in member.rooms.values())
        s.reply(N.RPL_WHOISCHANNELS, member.nick, rooms, trailing=True)
    s.reply(N.RPL_WHOISSERVER, member.nick, s.info.name, f"{s.info.network} ({member.transport})")
    if member.away is not None:
        s.reply(N.RPL_AWAY, member.nick, member.away)
    idle = max(0, int(now - member.last_active))
    s.reply(N.RPL_WHOISIDLE, member.nick, str(idle), str(int(member.created)),
            "seconds idle, signon time")
    s.reply(N.RPL_ENDOFWHOIS, member.nick, "End of /WHOIS list")


def cmd_whowas(s: Session, msg: Message, now: float) -> None:
    if not msg.params or not msg.params[0]:
        s.reply(N.ERR_NONICKNAMEGIVEN, "No nickname given")
        return
    s.reply(N.ERR_WASNOSUCHNICK, msg.params[0], "There was no such nickname")
    s.reply(N.RPL_ENDOFWHOWAS, msg.params[0], "End of WHOWAS")


def cmd_userhost(s: Session, msg: Message, now: float) -> None:
    found: list[str] = []
    for nick in msg.params[:5]:
        member = s.hub.find_user(nick)
        if member is not None:
            away = "-" if member.away is not None else "+"
            found.append(f"{member.nick}={away}{member.userhost}")
    s.reply(N.RPL_USERHOST, " ".join(found), trailing=True)


def cmd_ison(s: Session, msg: Message, now: float) -> None:
    nicks = " ".join(msg.params).split()
    online = [m.nick for m in map(s.hub.find_user, nicks) if m is not None]
    s.reply(N.RPL_ISON, " ".join(online), trailing=True)


def cmd_away(s: Session, msg: Message, now: float) -> None:
    assert s.user is not None
    text = msg.params[0] if msg.params else ""
    if text:
        s.user.away = text[:AWAYLEN]
        s.reply(N.RPL_NOWAWAY, "You have been marked as being away")
    else:
        s.user.away = None
        s.reply(N.RPL_UNAWAY, "You are no longer marked as being away")


def cmd_list(s: Session, msg: Message, now: float) -> None:
    wanted = set(msg.params[0].split(",")) if msg.params else None
    s.reply(N.RPL_LISTSTART, "Channel", "Users  Name")
    for room in s.hub.iter_rooms():
        if wanted is None or room.name in wanted:
            s.reply(N.RPL_LIST, room.name, str(len(room.members)), room.topic)
    s.reply(N.RPL_LISTEND, "End of /LIST")


def cmd_mode(s: Session, msg: Message, now: float) -> None:
    target = msg.params[0]
    if target.startswith("#"):
        _channel_mode(s, msg, target)
        return
    assert s.user is not None
    if s.hub.find_user(target) is not s.user:
        if s.hub.find_user(target) is None:
            s.reply(N.ERR_NOSUCHNICK, target, "No such nick/channel")
        else:
            s.reply(N.ERR_USERSDONTMATCH, "Can't change mode for other users")
        return
    if len(msg.params) == 1:
        s.reply(N.RPL_UMODEIS, "+" + s.umodes)
        return
    _user_mode(s, msg.params[1])


def _user_mode(s: Session, changes: str) -> None:
    """Apply +i/-i/+w/-w (the only user modes), echo what changed, 501 for the rest."""
    assert s.user is not None
    adding = True
    modes = set(s.umodes)
    unknown = False
    for ch in changes:
        if ch in "+-":
            adding = ch == "+"
        elif ch in "iw":
            if adding:
                modes.add(ch)
            else:
                modes.discard(ch)
        else:
            unknown = True
    new = "".join(sorted(modes))
    if unknown:
        s.reply(N.ERR_UMODEUNKNOWNFLAG, "Unknown MODE flag")
    added = "".join(m for m in new if m not in s.umodes)
    removed = "".join(m for m in s.umodes if m not in new)
    s.umodes = new
    if added or removed:
        text = (f"+{added}" if added else "") + (f"-{removed}" if removed else "")
        s.send_line(format_line("MODE", s.user.nick, text, source=s.user.prefix))


def _channel_mode(s: Session, msg: Message, channel: str) -> None:
    room = s.hub.find_room(channel)
    if room is None:
        s.reply(N.ERR_NOSUCHCHANNEL, channel, "No such channel")
        return
    if len(msg.params) == 1:
        s.reply(N.RPL_CHANNELMODEIS, room.name, "+" + room.modes)
        s.reply(N.RPL_CREATIONTIME, room.name, str(int(room.created)))
        return
    changes = msg.params[1]
    if changes.lstrip("+") == "b" and len(msg.params) == 2:  # ban list query: always empty
        s.reply(N.RPL_ENDOFBANLIST, room.name, "End of channel ban list")
        return
    assert s.user is not None
    if not room.is_op(s.user):
        s.reply(N.ERR_CHANOPRIVSNEEDED, room.name, "You're not channel operator")
        return
    adding = True
    for ch in changes:  # +n and +t are always set; nothing else can be changed
        if ch in "+-":
            adding = ch == "+"
        elif not (adding and ch in room.modes):
            s.reply(N.ERR_UNKNOWNMODE, ch, "is not a mode this server can change")
            return


def send_lusers(s: Session) -> None:
    users = len(s.hub.users)
    s.reply(N.RPL_LUSERCLIENT, f"There are {users} users and 0 invisible on 1 servers")
    s.reply(N.RPL_LUSERCHANNELS, str(len(s.hub.rooms)), "channels formed")
    s.reply(N.RPL_LUSERME, f"I have {users} clients and 0 servers")


def cmd_lusers(s: Session, msg: Message, now: float) -> None:
    send_lusers(s)


def send_motd(s: Session) -> None:
    if not s.info.motd:
        s.reply(N.ERR_NOMOTD, "MOTD File is missing")
        return
    s.reply(N.RPL_MOTDSTART, f"- {s.info.name} Message of the day - ")
    for line in s.info.motd:
        s.reply(N.RPL_MOTD, f"- {line}")
    s.reply(N.RPL_ENDOFMOTD, "End of /MOTD command.")


def cmd_motd(s: Session, msg: Message, now: float) -> None:
    send_motd(s)


def cmd_version(s: Session, msg: Message, now: float) -> None:
    s.reply(N.RPL_VERSION, VERSION, s.info.name, "ChatLab IRC + HTTP chat server")
    s.send_isupport()


def cmd_time(s: Session, msg: Message, now: float) -> None:
    when = datetime.fromtimestamp(now, UTC).strftime("%A %B %d %Y -- %H:%M:%S +00:00")
    s.reply(N.RPL_TIME, s.info.name, when)


# --- draft/chathistory -------------------------------------------------------------------
def _fail(s: Session, code: str, *context: str) -> None:
    s.stats.errors[f"FAIL {code}"] += 1
    s.send("FAIL", "CHATHISTORY", code, *context)


def cmd_chathistory(s: Session, msg: Message, now: float) -> None:
    """CHATHISTORY BEFORE/AFTER/LATEST/AROUND <target> <ref> <limit>, BETWEEN, TARGETS."""
    params = msg.params
    sub = params[0].upper()
    if sub not in SUBCOMMANDS:
        _fail(s, "UNKNOWN_COMMAND", sub[:32], "Unknown command")
        return
    needed = 4 if sub in ("TARGETS", "BEFORE", "AFTER", "LATEST", "AROUND") else 5
    if len(params) < needed:
        _fail(s, "INVALID_PARAMS", sub, "Not enough parameters")
        return
    try:
        if sub == "TARGETS":
            refs = [parse_ref(params[1]), parse_ref(params[2])]
            limit = parse_limit(params[3], CHATHISTORY_MAX)
        else:
            refs = [parse_ref(params[2], star=sub == "LATEST")]
            if sub == "BETWEEN":
                refs.append(parse_ref(params[3]))
            limit = parse_limit(params[needed - 1], CHATHISTORY_MAX)
        if any(r.kind == "*" for r in refs[1:]):
            raise HistoryError("INVALID_PARAMS", "'*' is only allowed with LATEST")
    except HistoryError as exc:
        _fail(s, exc.code, sub, exc.description)
        return
    batch = None
    if s.caps & CAP_BATCH:
        s.batches += 1
        batch = f"h{s.batches}"
    if sub == "TARGETS":
        _send_targets(s, refs, limit, batch)
        return
    target = params[1]
    kinds = None if s.caps & CAP_EVENT_PLAYBACK else frozenset({"message", "notice"})
    events = select(_history_of(s, target), sub, refs, limit, kinds)
    if batch is not None:
        s.send("BATCH", f"+{batch}", "chathistory", target)
    for event in events:
        s.send_bytes(batched_event(event, s.variant, batch))
    if batch is not None:
        s.send("BATCH", f"-{batch}")


def _history_of(s: Session, target: str) -> list[Event]:
    """A channel's log, or the private messages ``target`` sent us that the hub kept."""
    if target.startswith("#"):
        room = s.hub.find_room(target)
        return list(room.log.events) if room is not None else []
    assert s.user is not None
    key = s.hub.find_user(target)
    nick = key.nick if key is not None else target
    return [e for e in s.user.inbox.events if e.nick == nick]


def _send_targets(s: Session, refs: list[Ref], limit: int, batch: str | None) -> None:
    """TARGETS: our channels with messages between the two timestamps, by latest message."""
    low, high = sorted(r.value for r in refs)
    assert s.user is not None
    found: list[tuple[float, str]] = []
    for room in s.user.rooms.values():
        times = [e.ts for e in room.log.events
                 if e.kind in ("message", "notice") and low <= e.ts <= high]
        if times:
            found.append((max(times), room.name))
    found.sort()
    if batch is not None:
        s.send("BATCH", f"+{batch}", "draft/chathistory-targets")
    for ts, name in found[:limit]:
        tags = {"batch": batch} if batch is not None else None
        s.send_line(format_line("CHATHISTORY", "TARGETS", name, f"timestamp={server_time(ts)}",
                                source=s.info.name, tags=tags))
    if batch is not None:
        s.send("BATCH", f"-{batch}")

