"""Questions about users and the server: WHOIS, WHOWAS, USERHOST, ISON, LUSERS, MOTD,
VERSION, TIME, INFO (pure).  Real clients send most of these around registration and
joins.  WHO and LIST are in :mod:`chat.irc.commands.who`."""

from __future__ import annotations

from datetime import UTC, datetime

from ...core.clock import Now
from ...core.hub import User
from .. import numerics as N
from ..caps import CAP_MULTI_PREFIX, VERSION
from ..message import Message
from ..session import Session
from .table import Command

INFO = (
    f"{VERSION}: an IRC + HTTP chat server and a push-versus-poll lab.",
    "One asyncio process: IRC over TCP and a JSON HTTP API (polling, long polling, SSE)",
    "on one hub, a state machine of replicated operations.",
    "Written in Python; MIT licence.",
)


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
    rooms = _whois_channels(s, member)
    if rooms:
        s.reply(N.RPL_WHOISCHANNELS, member.nick, rooms, trailing=True)
    s.reply(N.RPL_WHOISSERVER, member.nick, s.info.name, f"{s.info.network} ({member.transport})")
    if member.oper:
        s.reply(N.RPL_WHOISOPERATOR, member.nick, "is an IRC operator")
    if member.away is not None:
        s.reply(N.RPL_AWAY, member.nick, member.away)
    idle = max(0, int(now.wall - member.last_active))
    s.reply(N.RPL_WHOISIDLE, member.nick, str(idle), str(int(member.created)),
            "seconds idle, signon time")
    s.reply(N.RPL_ENDOFWHOIS, member.nick, "End of /WHOIS list")


def _whois_channels(s: Session, member: User) -> str:
    """``@#a +#b #c``: the target's channels, secret ones only if we are in them too."""
    asker = s.user
    multi = bool(s.caps & CAP_MULTI_PREFIX)
    names = []
    for room in member.rooms:
        if room.secret and (asker is None or asker.key not in room.members):
            continue
        prefixes = room.prefixes(member)
        names.append((prefixes if multi else prefixes[:1]) + room.name)
    return " ".join(names)


def cmd_whowas(s: Session, msg: Message, now: Now) -> None:
    """``WHOWAS nick [count]``: 314 and 312 per remembered entry, newest first; 406."""
    if not msg.params or not msg.params[0]:
        s.reply(N.ERR_NONICKNAMEGIVEN, "No nickname given")
        return
    nick = msg.params[0].split(",")[0]
    count = msg.params[1] if len(msg.params) > 1 else ""
    entries = s.engine.was(nick)
    if count.isdigit() and int(count) > 0:
        entries = entries[: int(count)]
    if not entries:
        s.reply(N.ERR_WASNOSUCHNICK, nick, "There was no such nickname")
    for entry in entries:
        s.reply(N.RPL_WHOWASUSER, entry.nick, entry.user, entry.host, "*", entry.realname)
        when = datetime.fromtimestamp(entry.ts, UTC).strftime("%a %b %d %H:%M:%S %Y")
        s.reply(N.RPL_WHOISSERVER, entry.nick, s.info.name, when)
    s.reply(N.RPL_ENDOFWHOWAS, nick, "End of WHOWAS")


def cmd_userhost(s: Session, msg: Message, now: Now) -> None:
    found: list[str] = []
    for nick in msg.params[:5]:
        member = s.engine.find_user(nick)
        if member is not None:
            away = "-" if member.away is not None else "+"
            oper = "*" if member.oper else ""
            found.append(f"{member.nick}{oper}={away}{member.userhost}")
    s.reply(N.RPL_USERHOST, " ".join(found), trailing=True)


def cmd_ison(s: Session, msg: Message, now: Now) -> None:
    nicks = " ".join(msg.params).split()
    online = [m.nick for m in map(s.engine.find_user, nicks) if m is not None]
    s.reply(N.RPL_ISON, " ".join(online), trailing=True)


def send_lusers(s: Session) -> None:
    """251, 252 (if any operator), 254, 255, 265, 266: one server, so local = global."""
    census = s.engine.census()
    users, invisible = census.users, census.invisible
    s.reply(N.RPL_LUSERCLIENT,
            f"There are {users - invisible} users and {invisible} invisible on 1 servers")
    if census.opers:
        s.reply(N.RPL_LUSEROP, str(census.opers), "operator(s) online")
    s.reply(N.RPL_LUSERCHANNELS, str(census.rooms), "channels formed")
    s.reply(N.RPL_LUSERME, f"I have {users} clients and 0 servers")
    most = str(census.max_users)
    s.reply(N.RPL_LOCALUSERS, str(users), most, f"Current local users {users}, max {most}")
    s.reply(N.RPL_GLOBALUSERS, str(users), most, f"Current global users {users}, max {most}")


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


def cmd_info(s: Session, msg: Message, now: Now) -> None:
    for line in INFO:
        s.reply(N.RPL_INFO, line)
    s.reply(N.RPL_ENDOFINFO, "End of INFO list")


COMMANDS = {
    "WHOIS": Command(cmd_whois),
    "WHOWAS": Command(cmd_whowas),
    "USERHOST": Command(cmd_userhost, 1),
    "ISON": Command(cmd_ison, 1),
    "LUSERS": Command(cmd_lusers),
    "MOTD": Command(cmd_motd),
    "VERSION": Command(cmd_version),
    "TIME": Command(cmd_time),
    "INFO": Command(cmd_info),
}
