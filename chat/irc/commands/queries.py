"""Questions about users and the server: WHO, WHOIS, WHOWAS, USERHOST, ISON, LUSERS, MOTD,
VERSION, TIME (pure).  Real clients send most of these around registration and joins."""

from __future__ import annotations

from datetime import UTC, datetime

from ...core.clock import Now
from ...core.hub import Room, User
from .. import numerics as N
from ..caps import VERSION
from ..message import Message
from ..session import Session
from .table import Command


def _who_line(s: Session, member: User, channel: str, room: Room | None) -> None:
    flags = "G" if member.away is not None else "H"
    if room is not None and room.is_op(member):
        flags += "@"
    s.reply(N.RPL_WHOREPLY, channel, member.user, member.host, s.info.name, member.nick,
            flags, f"0 {member.realname}")


def cmd_who(s: Session, msg: Message, now: Now) -> None:
    mask = msg.params[0] if msg.params else "*"
    if mask.startswith("#"):
        room = s.engine.find_room(mask)
        if room is not None:
            for member in room.members.values():
                _who_line(s, member, room.name, room)
    else:
        found = s.engine.find_user(mask)
        if found is not None:
            _who_line(s, found, "*", None)
    s.reply(N.RPL_ENDOFWHO, mask, "End of WHO list")


def cmd_whois(s: Session, msg: Message, now: Now) -> None:
    if not msg.params or not msg.params[-1]:
        s.reply(N.ERR_NONICKNAMEGIVEN, "No nickname given")
        return
    nick = msg.params[-1].split(",")[0]
    member = s.engine.find_user(nick)
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
    idle = max(0, int(now.wall - member.last_active))
    s.reply(N.RPL_WHOISIDLE, member.nick, str(idle), str(int(member.created)),
            "seconds idle, signon time")
    s.reply(N.RPL_ENDOFWHOIS, member.nick, "End of /WHOIS list")


def cmd_whowas(s: Session, msg: Message, now: Now) -> None:
    if not msg.params or not msg.params[0]:
        s.reply(N.ERR_NONICKNAMEGIVEN, "No nickname given")
        return
    s.reply(N.ERR_WASNOSUCHNICK, msg.params[0], "There was no such nickname")
    s.reply(N.RPL_ENDOFWHOWAS, msg.params[0], "End of WHOWAS")


def cmd_userhost(s: Session, msg: Message, now: Now) -> None:
    found: list[str] = []
    for nick in msg.params[:5]:
        member = s.engine.find_user(nick)
        if member is not None:
            away = "-" if member.away is not None else "+"
            found.append(f"{member.nick}={away}{member.userhost}")
    s.reply(N.RPL_USERHOST, " ".join(found), trailing=True)


def cmd_ison(s: Session, msg: Message, now: Now) -> None:
    nicks = " ".join(msg.params).split()
    online = [m.nick for m in map(s.engine.find_user, nicks) if m is not None]
    s.reply(N.RPL_ISON, " ".join(online), trailing=True)


def send_lusers(s: Session) -> None:
    users = s.engine.user_count()
    s.reply(N.RPL_LUSERCLIENT, f"There are {users} users and 0 invisible on 1 servers")
    s.reply(N.RPL_LUSERCHANNELS, str(s.engine.room_count()), "channels formed")
    s.reply(N.RPL_LUSERME, f"I have {users} clients and 0 servers")


def cmd_lusers(s: Session, msg: Message, now: Now) -> None:
    send_lusers(s)


def send_motd(s: Session) -> None:
    if not s.info.motd:
        s.reply(N.ERR_NOMOTD, "MOTD File is missing")
        return
    s.reply(N.RPL_MOTDSTART, f"- {s.info.name} Message of the day - ")
    for line in s.info.motd:
        s.reply(N.RPL_MOTD, f"- {line}")
    s.reply(N.RPL_ENDOFMOTD, "End of /MOTD command.")


def cmd_motd(s: Session, msg: Message, now: Now) -> None:
    send_motd(s)


def cmd_version(s: Session, msg: Message, now: Now) -> None:
    s.reply(N.RPL_VERSION, VERSION, s.info.name, "ChatLab IRC + HTTP chat server")
    s.send_isupport()


def cmd_time(s: Session, msg: Message, now: Now) -> None:
    when = datetime.fromtimestamp(now.wall, UTC).strftime("%A %B %d %Y -- %H:%M:%S +00:00")
    s.reply(N.RPL_TIME, s.info.name, when)


COMMANDS = {
    "WHO": Command(cmd_who),
    "WHOIS": Command(cmd_whois),
    "WHOWAS": Command(cmd_whowas),
    "USERHOST": Command(cmd_userhost, 1),
    "ISON": Command(cmd_ison, 1),
    "LUSERS": Command(cmd_lusers),
    "MOTD": Command(cmd_motd),
    "VERSION": Command(cmd_version),
    "TIME": Command(cmd_time),
}
