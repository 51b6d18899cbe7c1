"""Server operators: OPER, KILL, WALLOPS and CHGHOST (pure).

``--oper NAME:HASH`` names the operators; OPER checks the password against the scrypt
hash through ``ServerInfo.offload`` (a worker thread in the adapter, since a check costs
tens of milliseconds), and an unknown name is checked against a dummy hash so that the
answer takes as long.  381 grants, 464 is a wrong password, 491 an unknown name.
"""

from __future__ import annotations

from ...core.clock import Now
from ...core.hub import User
from ...core.passwords import DUMMY_HASH, verify_password
from .. import numerics as N
from ..message import Message, format_line
from ..session import Session, State
from .table import Command


def cmd_oper(s: Session, msg: Message, now: Now) -> None:
    user = s.user
    assert user is not None
    name, password = msg.params[0], msg.params[1]
    stored = s.info.opers.get(name)
    s.expect(s.info.offload(lambda: verify_password(password, stored or DUMMY_HASH)),
             lambda ok: _checked(s, user, name, stored is not None and ok, stored, now))


def _checked(s: Session, user: User, name: str, ok: bool, stored: str | None,
             now: Now) -> None:
    if s.user is not user or s.state is State.CLOSED:
        return  # gone while the hash was checked
    if stored is None:
        s.reply(N.ERR_NOOPERHOST, "No O-lines for your host")
    elif not ok:
        s.reply(N.ERR_PASSWDMISMATCH, "Password incorrect")
    else:
        s.expect(s.engine.oper(user, name, now.wall), lambda _: _granted(s, user))


def _granted(s: Session, user: User) -> None:
    s.reply(N.RPL_YOUREOPER, "You are now an IRC operator")
    s.send_line(format_line("MODE", user.nick, "+o", source=user.prefix))


def cmd_kill(s: Session, msg: Message, now: Now) -> None:
    """``KILL nick :reason``: the victim sees KILL and ERROR, its channels a QUIT."""
    user = s.user
    assert user is not None
    reason = msg.params[1] if len(msg.params) > 1 else ""
    s.expect(s.engine.kill(user, msg.params[0], reason, now.wall), _ignore)


def _ignore(value: object) -> None:
    """What everyone sees is sent by the hub; nothing more to tell the operator."""


def cmd_wallops(s: Session, msg: Message, now: Now) -> None:
    """``WALLOPS :text`` to every user with +w, echoed to the operator who sent it."""
    user = s.user
    assert user is not None
    if not msg.params[0]:
        s.reply(N.ERR_NEEDMOREPARAMS, "WALLOPS", "Not enough parameters")
        return
    s.expect(s.engine.wallops(user, msg.params[0], now.wall), s.echo)


def cmd_chghost(s: Session, msg: Message, now: Now) -> None:
    """``CHGHOST nick user host``: clients with the chghost cap see the change."""
    user = s.user
    assert user is not None
    nick, username, host = msg.params[:3]
    s.expect(s.engine.chghost(user, nick, username, host, now.wall),
             lambda event: s.send("NOTICE", user.nick,
                                  f"Changed the host of {event.nick} to {username}@{host}"),
             lambda exc: s.hub_fail("CHGHOST", exc))


COMMANDS = {
    "OPER": Command(cmd_oper, 2),
    "KILL": Command(cmd_kill, 1),
    "WALLOPS": Command(cmd_wallops, 1),
    "CHGHOST": Command(cmd_chghost, 3),
}
