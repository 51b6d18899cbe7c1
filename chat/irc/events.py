"""Hub events as IRC lines (pure).  The broadcast hot path lives here.

A hub event is formatted at most once per *tag variant* (plain, ``time``, ``msgid``, both)
per publish: :meth:`chat.irc.session.Session.deliver` keeps the bytes in the publish's
cache under the variant number, so a message to 900 members costs one or two encodings,
not 900.  The cache goes with the publish, so the room history keeps events, not bytes.
"""

from __future__ import annotations

from ..core.events import Event
from .message import encode, server_time

TAG_TIME = 1    # server-time negotiated
TAG_MSGID = 2   # message-tags negotiated (msgid = the hub event id)

_COMMANDS = {"message": "PRIVMSG", "notice": "NOTICE"}


def event_body(event: Event) -> str:
    """The line for ``event`` without tags or CR LF, e.g. ``:a!u@h PRIVMSG #x :hi``."""
    prefix = f":{event.nick}!{event.userhost}"
    kind = event.kind
    command = _COMMANDS.get(kind)
    if command is not None:
        return f"{prefix} {command} {event.target} :{event.text}"
    if kind == "join":
        return f"{prefix} JOIN {event.target}"
    if kind == "part":
        if event.text:
            return f"{prefix} PART {event.target} :{event.text}"
        return f"{prefix} PART {event.target}"
    if kind == "quit":
        return f"{prefix} QUIT :{event.text}"
    if kind == "nick":
        return f"{prefix} NICK :{event.text}"
    if kind == "topic":
        return f"{prefix} TOPIC {event.target} :{event.text}"
    raise ValueError(f"unknown event kind {kind!r}")


def event_tags(event: Event, variant: int) -> str:
    """The tag section (``msgid=..;time=..``, no ``@``) for ``variant``; may be empty."""
    if variant == TAG_TIME | TAG_MSGID:
        return f"msgid={event.id};time={server_time(event.ts)}"
    if variant == TAG_TIME:
        return f"time={server_time(event.ts)}"
    if variant == TAG_MSGID:
        return f"msgid={event.id}"
    return ""


def encode_event(event: Event, variant: int) -> bytes:
    """The wire bytes of ``event`` for a client with tag ``variant`` (uncached)."""
    tags = event_tags(event, variant)
    body = event_body(event)
    return encode(f"@{tags} {body}" if tags else body)


def batched_event(event: Event, variant: int, batch: str | None) -> bytes:
    """``event`` for a chathistory reply: its usual tags plus ``batch=<ref>`` if batched."""
    tags = event_tags(event, variant)
    if batch is not None:
        tags = f"batch={batch};{tags}" if tags else f"batch={batch}"
    body = event_body(event)
    return encode(f"@{tags} {body}" if tags else body)
