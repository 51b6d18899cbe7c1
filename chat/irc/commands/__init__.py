"""The IRC command table and the one entry point for a received line (pure).

Handlers are grouped by topic in the modules of this package; each module imports the
session, never the other way round.  :func:`receive` parses a line, applies the table's
checks (451 before registration, 461 for missing parameters) and runs the handler.  A
handler that raises answers that command with 400 and a logged traceback: one bad command
never costs the client its connection nor leaks the exception's text.
"""

from __future__ import annotations

import logging

from ...core.clock import Now
from .. import numerics as N
from ..caps import CAP_BATCH, CAP_LABELED_RESPONSE
from ..message import Message, ParseError, decode, parse
from ..session import Session, State
from . import channels, chathistory, messaging, modes, operators, queries, registration, who
from .table import Command

log = logging.getLogger(__name__)

COMMANDS: dict[str, Command] = {
    **registration.COMMANDS,
    **channels.COMMANDS,
    **modes.COMMANDS,
    **messaging.COMMANDS,
    **operators.COMMANDS,
    **queries.COMMANDS,
    **who.COMMANDS,
    **chathistory.COMMANDS,
}


LABELS = CAP_LABELED_RESPONSE | CAP_BATCH  # labels are answered with both caps only


def receive(s: Session, raw: bytes, now: Now) -> None:
    """Handle one received line (without CR LF, already checked for length).

    A line with a ``label`` tag from a client with ``labeled-response`` (and ``batch``)
    has its whole answer labelled (see :class:`chat.irc.session.Session`).
    """
    if s.state is State.CLOSED:
        return
    s.stats.requests += 1
    try:
        msg = parse(decode(raw))
    except ParseError:
        return  # an empty or prefix-only line: ignored, as servers do
    label = msg.tags.get("label") if msg.tags else None
    if label and s.caps & LABELS == LABELS and s.state is State.REGISTERED:
        s.start_label(label[:64])
        _run(s, msg, now)
        s.end_label()
    else:
        _run(s, msg, now)


def _run(s: Session, msg: Message, now: Now) -> None:
    command = COMMANDS.get(msg.command)
    if command is None:
        s.reply(N.ERR_UNKNOWNCOMMAND, msg.command[:32], "Unknown command")
        return
    if command.active:
        s.heartbeat.active(now.mono)
    if command.registered and s.state is not State.REGISTERED:
        s.reply(N.ERR_NOTREGISTERED, "You have not registered")
        return
    if len(msg.params) < command.min_params:
        s.reply(N.ERR_NEEDMOREPARAMS, msg.command, "Not enough parameters")
        return
    try:
        command.handler(s, msg, now)
    except Exception:
        log.exception("%s from %s failed", msg.command, s.nick or "*")
        s.stats.errors["internal"] += 1
        s.reply(N.ERR_UNKNOWNERROR, msg.command[:32], "Internal error, command not done")
