"""Messages: PRIVMSG, NOTICE, TAGMSG and AWAY (pure).

NOTICE never gets an error reply (RFC 2812 3.3.2).  With ``echo-message`` the sender gets
its own message back, carrying the same ``msgid`` the recipients saw.
"""

from __future__ import annotations

from ...core.clock import Now
from ...core.errors import HubError
from ...core.events import Event
from ...core.hub import User
from .. import numerics as N
from ..caps import AWAYLEN, CAP_ECHO_MESSAGE, MAX_TARGETS
from ..message import Message
from ..session import Session
from .table import Command


def _quiet(exc: HubError) -> None:
    """A NOTICE's refusal is not answered."""


def cmd_privmsg(s: Session, msg: Message, now: Now) -> None:
    """PRIVMSG and NOTICE to channels and nicks (at most MAX_TARGETS, comma-separated)."""
    user = s.user
    assert user is not None
    notice = msg.command == "NOTICE"
    params = msg.params
    if not params or not params[0]:
        if not notice:
            s.reply(N.ERR_NORECIPIENT, f"No recipient given ({msg.command})")
        return
    if len(params) < 2 or not params[1]:
        if not notice:
            s.reply(N.ERR_NOTEXTTOSEND, "No text to send")
        return
    targets = params[0].split(",")
    if len(targets) > MAX_TARGETS:
        if not notice:
            s.reply(N.ERR_TOOMANYTARGETS, params[0], "Too many recipients")
        return
    for target in targets:
        _send_to(s, user, target, params[1], notice, now)


def _send_to(s: Session, user: User, target: str, text: str, notice: bool, now: Now) -> None:
    kind = "notice" if notice else "message"
    on_error = _quiet if notice else None
    echo = bool(s.caps & CAP_ECHO_MESSAGE)
    if target.startswith("#"):
        s.expect(s.engine.say(user, target, text, now.wall, kind),
                 lambda event: _sent(s, event, echo), on_error)
        return
    recipient = s.engine.find_user(target)
    if recipient is None:
        if not notice:
            s.reply(N.ERR_NOSUCHNICK, target, "No such nick/channel")
        return
    # To ourselves the hub has delivered it already: no echo on top.
    s.expect(s.engine.tell(user, target, text, now.wall, kind),
             lambda event: _sent(s, event, echo and recipient is not user), on_error)
    if recipient.away is not None and not notice:
        s.reply(N.RPL_AWAY, recipient.nick, recipient.away)


def _sent(s: Session, event: Event, echo: bool) -> None:
    s.stats.messages += 1
    if echo:
        s.echo(event)


def cmd_tagmsg(s: Session, msg: Message, now: Now) -> None:
    """TAGMSG (client-only tags, e.g. typing notices): accepted and not relayed."""


def cmd_away(s: Session, msg: Message, now: Now) -> None:
    assert s.user is not None
    text = msg.params[0] if msg.params else ""
    if text:
        s.expect(s.engine.set_away(s.user, text[:AWAYLEN], now.wall),
                 lambda _: s.reply(N.RPL_NOWAWAY, "You have been marked as being away"))
    else:
        s.expect(s.engine.set_away(s.user, None, now.wall),
                 lambda _: s.reply(N.RPL_UNAWAY, "You are no longer marked as being away"))


COMMANDS = {
    "PRIVMSG": Command(cmd_privmsg),
    "NOTICE": Command(cmd_privmsg),
    "TAGMSG": Command(cmd_tagmsg, 1),
    "AWAY": Command(cmd_away),
}
