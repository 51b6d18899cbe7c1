"""Hub events as IRC lines (pure).  The broadcast hot path lives here.

A hub event is formatted at most once per *tag variant* (``time``, ``msgid`` with the
client-only tags, ``extended-join``) per publish:
:meth:`chat.irc.session.Session.deliver` keeps the bytes in the publish's cache under the
variant number, so a message to 900 members costs a few encodings, not 900.  The cache
goes with the publish, so the room history keeps events, not bytes.
"""

from __future__ import annotations

from ..core.events import Event
from .message import encode, format_line, format_tags, server_time

TAG_TIME = 1           # server-time negotiated
TAG_MSGID = 2          # message-tags negotiated (msgid = the hub event id; client tags)
TAG_EXTENDED_JOIN = 4  # extended-join negotiated (JOIN carries account and realname)

_COMMANDS = {"message": "PRIVMSG", "notice": "NOTICE"}


def event_body(event: Event, variant: int = 0) -> str:
    """The line for ``event`` without tags or CR LF, e.g. ``:a!u@h PRIVMSG #x :hi``."""
    prefix = f":{event.nick}!{event.userhost}" if event.userhost else f":{event.nick}"
    kind = event.kind
    command = _COMMANDS.get(kind)
    if command is not None:
        return f"{prefix} {command} {event.target} :{event.text}"
    if kind == "join":
        if variant & TAG_EXTENDED_JOIN:  # no accounts here: '*'
            return f"{prefix} JOIN {event.target} * :{event.args[0] if event.args else ''}"
        return f"{prefix} JOIN {event.target}"
    if kind in ("part", "away"):
        command = kind.upper()
        target = f" {event.target}" if kind == "part" else ""
        return f"{prefix} {command}{target} :{event.text}" if event.text \
            else f"{prefix} {command}{target}"
    return _other_body(event, prefix)


def _other_body(event: Event, prefix: str) -> str:
    kind = event.kind
    if kind == "quit":
        return f"{prefix} QUIT :{event.text}"
    if kind == "nick":
        return f"{prefix} NICK :{event.text}"
    if kind == "topic":
        return f"{prefix} TOPIC {event.target} :{event.text}"
    if kind == "mode":
        return prefix + " " + format_line("MODE", event.target, event.text, *event.args)
    if kind == "kick":
        return f"{prefix} KICK {event.target} {event.args[0]} :{event.text}"
    if kind == "invite":
        return f"{prefix} INVITE {event.target} {event.args[0]}"
    if kind == "tagmsg":
        return f"{prefix} TAGMSG {event.target}"
    if kind in ("setname", "wallops"):
        return f"{prefix} {kind.upper()} :{event.text}"
    if kind == "chghost":
        return f"{prefix} CHGHOST {event.args[0]} {event.args[1]}"
    if kind == "kill":
        return f"{prefix} KILL {event.target} :{event.text}"
    raise ValueError(f"unknown event kind {kind!r}")


def event_tags(event: Event, variant: int) -> str:
    """The tag section (``+typing=..;msgid=..;time=..``, no ``@``) for ``variant``."""
    tags = variant & (TAG_TIME | TAG_MSGID)
    if tags == TAG_TIME | TAG_MSGID:
        out = f"msgid={event.id};time={server_time(event.ts)}"
    elif tags == TAG_TIME:
        return f"time={server_time(event.ts)}"
    elif tags == TAG_MSGID:
        out = f"msgid={event.id}"
    else:
        return ""
    if event.tags:  # client-only tags go to message-tags clients only
        return format_tags(event.tags) + ";" + out
    return out


def encode_event(event: Event, variant: int) -> bytes:
    """The wire bytes of ``event`` for a client with tag ``variant`` (uncached)."""
    tags = event_tags(event, variant)
    body = event_body(event, variant)
    return encode(f"@{tags} {body}" if tags else body)


def batched_event(event: Event, variant: int, batch: str | None) -> bytes:
    """``event`` for a chathistory reply: its usual tags plus ``batch=<ref>`` if batched."""
    tags = event_tags(event, variant)
    if batch is not None:
        tags = f"batch={batch};{tags}" if tags else f"batch={batch}"
    body = event_body(event, variant)
    return encode(f"@{tags} {body}" if tags else body)
