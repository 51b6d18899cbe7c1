"""Connection registration and upkeep: CAP, PASS, NICK, USER, PING, PONG, QUIT (pure).

Registration completes when NICK and USER are in and CAP negotiation (if begun) has ended;
the engine then claims the nick and the welcome burst (001-005, LUSERS, MOTD) follows.
"""

from __future__ import annotations

from datetime import UTC, datetime

from ...core.clock import Now
from ...core.errors import HubError
from ...core.events import Event
from ...core.hub import User
from ...core.modes import CHANNEL_FLAGS, USER_MODES
from .. import numerics as N
from ..caps import CAP_LS, CAPABILITIES, USERLEN, VERSION
from ..message import Message, format_line
from ..session import Session, State
from .queries import send_lusers, send_motd
from .table import Command


def cmd_cap(s: Session, msg: Message, now: Now) -> None:
    sub = msg.params[0].upper()
    if sub == "LS":
        if s.registration is not None:
            s.registration.negotiating = True
        _send_cap(s, "LS", CAP_LS)
    elif sub == "LIST":
        _send_cap(s, "LIST", s.enabled_caps())
    elif sub == "REQ":
        if s.registration is not None:
            s.registration.negotiating = True
        _cap_req(s, msg.params[1] if len(msg.params) > 1 else "")
    elif sub == "END":
        if s.registration is not None:
            s.registration.negotiating = False
            _try_register(s, now)
    else:
        s.reply(N.ERR_INVALIDCAPCMD, sub[:32], "Invalid CAP command")


def _cap_req(s: Session, text: str) -> None:
    """ACK or NAK the whole request (IRCv3: a request is applied entirely or not at all)."""
    caps = s.caps
    for token in text.split():
        bit = CAPABILITIES.get(token.removeprefix("-"))
        if bit is None:
            _send_cap(s, "NAK", text)
            return
        caps = caps & ~bit if token.startswith("-") else caps | bit
    s.set_caps(caps)
    _send_cap(s, "ACK", text)


def _send_cap(s: Session, sub: str, text: str) -> None:
    s.send_line(format_line("CAP", s.nick or "*", sub, text, source=s.info.name,
                            trailing=True))


def cmd_pass(s: Session, msg: Message, now: Now) -> None:
    if s.state is not State.REGISTERING or s.registration is None:
        s.reply(N.ERR_ALREADYREGISTERED, "You may not reregister")
        return
    s.registration.password = msg.params[0]


def cmd_nick(s: Session, msg: Message, now: Now) -> None:
    new = msg.params[0] if msg.params else ""
    if not new:
        s.reply(N.ERR_NONICKNAMEGIVEN, "No nickname given")
        return
    if s.user is None:
        try:
            s.engine.check_nick(new)
        except HubError as exc:
            s.hub_error(exc)
            return
        s.nick = new
        _try_register(s, now)
        return
    user = s.user
    old_prefix = user.prefix
    s.expect(s.engine.rename(user, new, now.wall),
             lambda events: _renamed(s, user, old_prefix, events))


def _renamed(s: Session, user: User, old_prefix: str, events: list[Event]) -> None:
    if user.nick == s.nick:
        return  # no change at all
    s.nick = user.nick
    if events:
        s.echo(events[0])  # the echo carries the same msgid as the others got
    else:  # in no channel: nobody else was told, tell ourselves
        s.send_line(format_line("NICK", user.nick, source=old_prefix, trailing=True))


def cmd_user(s: Session, msg: Message, now: Now) -> None:
    reg = s.registration
    if s.state is not State.REGISTERING or reg is None or reg.username is not None:
        s.reply(N.ERR_ALREADYREGISTERED, "You may not reregister")
        return
    if not msg.params[3]:  # an empty realname is a missing parameter (modern.ircdocs)
        s.reply(N.ERR_NEEDMOREPARAMS, "USER", "Not enough parameters")
        return
    name = "".join(ch for ch in msg.params[0] if ch.isalnum() or ch in "-_.~")
    reg.username = name[:USERLEN] or "user"
    reg.realname = msg.params[3]
    _try_register(s, now)


def _try_register(s: Session, now: Now) -> None:
    reg = s.registration
    if (s.state is not State.REGISTERING or reg is None or reg.negotiating or s.nick is None
            or reg.username is None or s.waiting):
        return
    if s.info.password is not None and reg.password != s.info.password:
        s.reply(N.ERR_PASSWDMISMATCH, "Password incorrect")
        s.end("Bad password", now.wall)
        return
    s.expect(s.engine.register(s.nick, reg.username, reg.host, reg.realname, "irc", s,
                               now.wall),
             lambda user: _accepted(s, user, now), lambda exc: _refused(s, exc))


def _accepted(s: Session, user: User, now: Now) -> None:
    if s.state is State.CLOSED:  # the connection went while the engine answered
        s.engine.quit(user, s.close_reason or "Connection closed", now.wall)
        return
    s.registered(user, now.mono)
    _welcome(s)


def _refused(s: Session, exc: HubError) -> None:
    """The nick was taken while we negotiated (or elsewhere first): choose another."""
    s.hub_error(exc)
    s.nick = None


def _welcome(s: Session) -> None:
    info, user = s.info, s.user
    assert user is not None
    created = datetime.fromtimestamp(info.created, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    s.reply(N.RPL_WELCOME, f"Welcome to the {info.network} IRC Network {user.prefix}")
    s.reply(N.RPL_YOURHOST, f"Your host is {info.name}, running version {VERSION}")
    s.reply(N.RPL_CREATED, f"This server was created {created}")
    s.reply(N.RPL_MYINFO, info.name, VERSION, USER_MODES, "b" + "".join(sorted(
        "klov" + CHANNEL_FLAGS)), "bklov")
    s.send_isupport()
    send_lusers(s)
    send_motd(s)


def cmd_ping(s: Session, msg: Message, now: Now) -> None:
    if not msg.params or not msg.params[0]:
        s.reply(N.ERR_NOORIGIN, "No origin specified")
        return
    s.send("PONG", s.info.name, msg.params[0])


def cmd_pong(s: Session, msg: Message, now: Now) -> None:
    s.stats.pongs_received += 1  # the adapter already counted the line as an answer


def cmd_quit(s: Session, msg: Message, now: Now) -> None:
    text = msg.params[0] if msg.params else ""
    s.end(f"Quit: {text}" if text else "Client Quit", now.wall)


COMMANDS = {
    "CAP": Command(cmd_cap, 1, registered=False),
    "PASS": Command(cmd_pass, 1, registered=False),
    "NICK": Command(cmd_nick, 0, registered=False),
    "USER": Command(cmd_user, 4, registered=False),
    "PING": Command(cmd_ping, 0, registered=False, active=False),
    "PONG": Command(cmd_pong, 0, registered=False, active=False),
    "QUIT": Command(cmd_quit, 0, registered=False),
}
