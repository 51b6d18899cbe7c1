"""Messages: PRIVMSG, NOTICE, TAGMSG, AWAY and SETNAME (pure).

NOTICE never gets an error reply (RFC 2812 3.3.2).  With ``echo-message`` the sender gets
its own message back, carrying the same ``msgid`` the recipients saw.  Client-only tags
(``+typing``, ``+draft/reply``, any ``+name``) ride along on PRIVMSG, NOTICE and TAGMSG
to the recipients that enabled ``message-tags``; a TAGMSG is relayed, never stored.
"""

from __future__ import annotations

from ...core.clock import Now
from ...core.errors import HubError
from ...core.events import Event
from ...core.hub import User
from .. import numerics as N
from ..caps import AWAYLEN, CAP_ECHO_MESSAGE, CAP_MESSAGE_TAGS, CAP_SETNAME, MAX_TARGETS
from ..message import Message, client_tags
from ..session import Session
from .table import Command


def _quiet(exc: HubError) -> None:
    """A NOTICE's refusal is not answered."""


def cmd_privmsg(s: Session, msg: Message, now: Now) -> None:
    """PRIVMSG and NOTICE to channels and nicks (at most MAX_TARGETS, comma-separated)."""
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
    _send_all(s, msg, params[1], "notice" if notice else "message", now)


def cmd_tagmsg(s: Session, msg: Message, now: Now) -> None:
    """TAGMSG: only client-only tags travel (typing notices, reactions); without any,
    there is nothing to relay."""
    if not client_tags(msg.tags):
        return
    _send_all(s, msg, "", "tagmsg", now)


def _send_all(s: Session, msg: Message, text: str, kind: str, now: Now) -> None:
    user = s.user
    assert user is not None
    targets = msg.params[0].split(",")
    if len(targets) > MAX_TARGETS:
        if kind != "notice":
            s.reply(N.ERR_TOOMANYTARGETS, msg.params[0], "Too many recipients")
        return
    tags = client_tags(msg.tags)
    for target in targets:
        if target:
            _send_to(s, user, target, text, kind, tags, now)


def _send_to(s: Session, user: User, target: str, text: str, kind: str,
             tags: tuple[str, ...], now: Now) -> None:
    on_error = _quiet if kind == "notice" else None
    echo = bool(s.caps & CAP_ECHO_MESSAGE) and (kind != "tagmsg"
                                                or bool(s.caps & CAP_MESSAGE_TAGS))
    if target.startswith("#"):
        s.expect(s.engine.say(user, target, text, now.wall, kind, tags),
                 lambda event: _sent(s, event, echo), on_error)
        return
    recipient = s.engine.find_user(target)
    if recipient is None:
        if kind != "notice":
            s.reply(N.ERR_NOSUCHNICK, target, "No such nick/channel")
        return
    # To ourselves the hub has delivered it already: no echo on top.
    s.expect(s.engine.tell(user, target, text, now.wall, kind, tags),
             lambda event: _sent(s, event, echo and recipient is not user), on_error)
    if recipient.away is not None and kind == "message":
        s.reply(N.RPL_AWAY, recipient.nick, recipient.away)


def _sent(s: Session, event: Event, echo: bool) -> None:
    if event.kind != "tagmsg":
        s.stats.messages += 1
    if echo:
        s.echo(event)


def cmd_away(s: Session, msg: Message, now: Now) -> None:
    """AWAY [:text] (306 / 305); away-notify clients in shared channels see AWAY."""
    assert s.user is not None
    text = msg.params[0] if msg.params else ""
    if text:
        s.expect(s.engine.set_away(s.user, text[:AWAYLEN], now.wall),
                 lambda _: s.reply(N.RPL_NOWAWAY, "You have been marked as being away"))
    else:
        s.expect(s.engine.set_away(s.user, None, now.wall),
                 lambda _: s.reply(N.RPL_UNAWAY, "You are no longer marked as being away"))


def cmd_setname(s: Session, msg: Message, now: Now) -> None:
    """SETNAME :realname (IRCv3 setname); FAIL SETNAME INVALID_REALNAME when refused."""
    assert s.user is not None
    s.expect(s.engine.setname(s.user, msg.params[0], now.wall),
             lambda event: s.echo(event) if s.caps & CAP_SETNAME else None,
             lambda exc: s.hub_fail("SETNAME", exc))


COMMANDS = {
    "PRIVMSG": Command(cmd_privmsg),
    "NOTICE": Command(cmd_privmsg),
    "TAGMSG": Command(cmd_tagmsg, 1),
    "AWAY": Command(cmd_away),
    "SETNAME": Command(cmd_setname, 1),
}
