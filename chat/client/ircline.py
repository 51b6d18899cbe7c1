"""What irc mode adds to :mod:`chat.irc.message` (pure: no socket, no clock).

Parsing, formatting, tag unescaping and server-time come from the server's own module;
here is only what a client needs on top: reading a line leniently (junk is ignored, never
raised), reply accessors, the chat event a line carries, and text cut to fit a line.
"""

from __future__ import annotations

from ..irc.message import Message, ParseError, decode, parse, parse_server_time
from .model import ChatEvent

MAX_TEXT = 400  # bytes of text per PRIVMSG line, leaving room for the prefix within 512

EVENT_KINDS = {"PRIVMSG": "message", "NOTICE": "notice", "JOIN": "join", "PART": "part",
               "QUIT": "quit", "NICK": "nick", "TOPIC": "topic"}


def parse_line(text: str) -> Message | None:
    """Parse one decoded line (without CR LF); None for an empty or malformed one."""
    try:
        return parse(text)
    except ParseError:
        return None


def read_line(raw: bytes) -> Message | None:
    """Parse one received line (LF removed, a CR before it allowed); None for junk."""
    return parse_line(decode(raw.rstrip(b"\r")))


def nick_of(line: Message) -> str:
    """The nick part of the source (``nick!user@host`` -> ``nick``; ``''`` if none)."""
    return (line.source or "").split("!", 1)[0]


def from_user(line: Message) -> bool:
    """True if the line comes from a user (``nick!user@host``), not from the server."""
    return "!" in (line.source or "")


def param(line: Message, index: int, default: str = "") -> str:
    """Parameter ``index`` of ``line``, or ``default`` when there are not that many."""
    return line.params[index] if len(line.params) > index else default


def tag(line: Message, name: str) -> str | None:
    """The value of tag ``name`` (None if the line does not carry it)."""
    return line.tags.get(name) if line.tags else None


def msgid(tags: dict[str, str] | None) -> int:
    """The ``msgid`` tag as an event id (0 if absent or not a number)."""
    value = tags.get("msgid", "") if tags else ""
    return int(value) if value.isdigit() else 0


def tag_time(tags: dict[str, str] | None, default: float) -> float:
    """The ``time`` tag (server-time) as unix seconds, or ``default``."""
    when = parse_server_time(tags.get("time", "")) if tags else None
    return default if when is None else when


def chat_event(line: Message, room: str | None, now: float) -> ChatEvent | None:
    """The chat event ``line`` carries (None for protocol traffic and server notices).

    ``room`` overrides the room read from the target (a history batch names it); ``now``
    is the arrival time, and the event time when the line has no ``time`` tag.
    """
    cmd = line.command
    if cmd not in EVENT_KINDS or (cmd in ("PRIVMSG", "NOTICE") and not from_user(line)):
        return None
    nick = nick_of(line)
    target, to, text = param(line, 0), "", ""
    if cmd in ("PRIVMSG", "NOTICE"):
        text = param(line, 1)
        if not target.startswith("#"):
            to, target = target, ""
        if text.startswith("\x01ACTION ") and text.endswith("\x01"):
            text = "* " + nick + " " + text[8:-1]
    elif cmd in ("PART", "TOPIC"):
        text = param(line, 1)
    elif cmd in ("QUIT", "NICK"):
        text, target = param(line, 0), ""
    if room is None:
        room = target[1:] if target.startswith("#") else ""
    return ChatEvent(room=room, id=msgid(line.tags), ts=tag_time(line.tags, now),
                     kind=EVENT_KINDS[cmd], nick=nick, text=text, received=now, to=to)


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Split ``text`` into pieces of at most ``limit`` UTF-8 bytes (whole characters)."""
    text = text.replace("\r", " ").replace("\n", " ")
    data = text.encode("utf-8")
    if len(data) <= limit:
        return [text]
    pieces: list[str] = []
    while data:
        cut = min(limit, len(data))
        while cut < len(data) and (data[cut] & 0xC0) == 0x80:  # not inside a character
            cut -= 1
        pieces.append(data[:cut].decode("utf-8"))
        data = data[cut:]
    return pieces
