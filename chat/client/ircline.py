"""The client's view of IRC lines: parse one received line, format one to send (pure).

Handles IRCv3 message tags (``@k=v;k2 :prefix CMD params :trailing``) with value
unescaping, and the ``time`` tag of server-time.  Nothing here touches a socket or a clock.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

_UNESCAPE = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}
MAX_TEXT = 400  # bytes of text per PRIVMSG line, leaving room for the prefix within 512


class Line(NamedTuple):
    tags: dict[str, str]
    source: str        # the prefix without ':' ('' if none)
    command: str       # upper-cased
    params: list[str]

    @property
    def nick(self) -> str:
        """The nick part of the source (``nick!user@host`` -> ``nick``)."""
        return self.source.split("!", 1)[0]

    def param(self, index: int, default: str = "") -> str:
        return self.params[index] if len(self.params) > index else default


def unescape_tag(value: str) -> str:
    if "\\" not in value:
        return value
    out: list[str] = []
    i, n = 0, len(value)
    while i < n:
        ch = value[i]
        if ch == "\\" and i + 1 < n:
            out.append(_UNESCAPE.get(value[i + 1], value[i + 1]))
            i += 2
        elif ch == "\\":  # a trailing lone backslash is dropped
            i += 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def parse_line(text: str) -> Line | None:
    """Parse one line (without CR LF); None for an empty or malformed line."""
    tags: dict[str, str] = {}
    if text.startswith("@"):
        raw, _, text = text.partition(" ")
        for item in raw[1:].split(";"):
            if item:
                key, _, value = item.partition("=")
                tags[key] = unescape_tag(value)
        text = text.lstrip(" ")
    source = ""
    if text.startswith(":"):
        source, _, text = text.partition(" ")
        source = source[1:]
        text = text.lstrip(" ")
    trailing: str | None = None
    if " :" in text:
        text, trailing = text.split(" :", 1)
    elif text.startswith(":"):
        text, trailing = "", text[1:]
    params = [p for p in text.split(" ") if p]  # IRC separates on spaces only
    if not params:
        return None
    command = params.pop(0).upper()
    if trailing is not None:
        params.append(trailing)
    return Line(tags, source, command, params)


def server_time(tags: dict[str, str], default: float) -> float:
    """The ``time`` tag (ISO 8601, UTC) as unix seconds, or ``default``."""
    value = tags.get("time")
    if not value:
        return default
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return default


def msgid(tags: dict[str, str]) -> int:
    """The ``msgid`` tag as an event id (0 if absent or not a number)."""
    value = tags.get("msgid", "")
    return int(value) if value.isdigit() else 0


def format_line(command: str, *params: str) -> bytes:
    """One line to send: the last parameter is sent as trailing (``:``) when it needs to be."""
    parts = [command]
    for i, p in enumerate(params):
        if i == len(params) - 1 and (p == "" or " " in p or p.startswith(":")):
            parts.append(":" + p)
        else:
            parts.append(p)
    return (" ".join(parts) + "\r\n").encode("utf-8", "replace")


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
