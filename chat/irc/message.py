"""IRC line parsing and formatting with IRCv3 message tags (pure: no I/O, no clock).

A line on the wire is ``[@tags SPACE] [:source SPACE] COMMAND [params] [SPACE :trailing]``.
:func:`parse` turns a decoded line (without CR LF) into a :class:`Message`;
:func:`format_line` builds one from parts; :class:`LineSplitter` cuts a byte stream into
lines and flags those over the limits: 512 bytes including CR LF for the message, and for
the tags a client sends 4,096 bytes including the ``@`` and the space that ends them
(IRCv3 message-tags: 4,094 bytes of tag data; the server's own lines may carry 8,191).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NamedTuple

from ..core.names import CLIENT_TAG_DATA, valid_client_tag

MAX_LINE = 512          # bytes, CR LF included (RFC 1459 2.3)
MAX_TAGS = 8191         # bytes of tags on a line we send, '@' and the space included
MAX_CLIENT_TAGS = CLIENT_TAG_DATA + 2  # bytes of a client's tags with '@' and ' '
MAX_BODY = MAX_LINE - 2  # the line without CR LF
MAX_INPUT = MAX_CLIENT_TAGS + MAX_BODY  # the longest acceptable line without its ending

_TAG_ESCAPES = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}
_TAG_ESCAPE_OUT = str.maketrans({";": "\\:", " ": "\\s", "\\": "\\\\", "\r": "\\r",
                                 "\n": "\\n"})


class ParseError(ValueError):
    """A line that is not an IRC message (empty, or a prefix/tags with no command)."""


class Message(NamedTuple):
    """One parsed line. ``command`` is upper-cased; numerics stay digit strings."""

    command: str
    params: list[str]
    source: str | None = None
    tags: dict[str, str] | None = None


def unescape_tag_value(value: str) -> str:
    r"""Undo IRCv3 tag-value escaping (``\:`` ``\s`` ``\\`` ``\r`` ``\n``; ``\x`` is ``x``)."""
    if "\\" not in value:
        return value
    out: list[str] = []
    chars = iter(value)
    for ch in chars:
        if ch != "\\":
            out.append(ch)
            continue
        nxt = next(chars, None)
        if nxt is None:  # a lone trailing backslash is dropped
            break
        out.append(_TAG_ESCAPES.get(nxt, nxt))
    return "".join(out)


def escape_tag_value(value: str) -> str:
    """Escape a tag value for the wire (the inverse of :func:`unescape_tag_value`)."""
    return value.translate(_TAG_ESCAPE_OUT)


def parse_tags(text: str) -> dict[str, str]:
    """``a=1;b;c=x\\sy`` -> ``{'a': '1', 'b': '', 'c': 'x y'}`` (later duplicates win)."""
    tags: dict[str, str] = {}
    for item in text.split(";"):
        if not item:
            continue
        key, _, value = item.partition("=")
        if key:
            tags[key] = unescape_tag_value(value)
    return tags


def format_tags(tags: dict[str, str]) -> str:
    """The tag section without the leading ``@`` (empty values are written as bare keys)."""
    return ";".join(f"{k}={escape_tag_value(v)}" if v else k for k, v in tags.items())


def client_tags(tags: dict[str, str] | None) -> tuple[str, ...]:
    """The client-only tags (``+name``, ``+vendor/name``) of a received line, flattened as
    ``(name, value, ...)`` the way the hub carries them; every other tag is dropped."""
    if not tags:
        return ()
    out: list[str] = []
    for key, value in tags.items():
        if key[0] == "+" and valid_client_tag(key):
            out += (key, value)
    return tuple(out)


def add_tags(line: bytes, tags: str, unless: str = "") -> bytes:
    """``line`` (wire bytes) with ``tags`` put first in its tag section.

    With ``unless``, a line with a tag starting so is left alone (a line of an inner
    batch keeps its own ``batch=`` tag).
    """
    if line[:1] != b"@":
        return b"@" + tags.encode() + b" " + line
    if unless and any(tag.startswith(unless.encode())
                      for tag in line[1: line.find(b" ")].split(b";")):
        return line
    return b"@" + tags.encode() + b";" + line[1:]


def parse(line: str) -> Message:
    """Parse one line (no CR LF). Raises :class:`ParseError` if there is no command.

    Runs of spaces between parts are tolerated, as most servers do.
    """
    tags: dict[str, str] | None = None
    rest = line.lstrip(" ")
    if rest.startswith("@"):
        tag_text, _, rest = rest[1:].partition(" ")
        tags = parse_tags(tag_text)
        rest = rest.lstrip(" ")
    source: str | None = None
    if rest.startswith(":"):
        source, _, rest = rest[1:].partition(" ")
        rest = rest.lstrip(" ")
    trailing: str | None = None
    head, sep, tail = rest.partition(" :")
    if sep:
        trailing = tail
    elif head.startswith(":"):  # only a trailing parameter after the command is impossible
        head, trailing = "", head[1:]
    words = [word for word in head.split(" ") if word]
    if not words:
        raise ParseError("no command")
    params = words[1:]
    if trailing is not None:
        params.append(trailing)
    return Message(words[0].upper(), params, source, tags)


def format_line(command: str, *params: str, source: str | None = None,
                tags: dict[str, str] | None = None, trailing: bool = False) -> str:
    """Build a line (no CR LF). The last parameter gets a ``:`` when it needs one
    (always with ``trailing``: lists such as CAP's read better by naive clients).

    Middle parameters must be non-empty and contain no space and no leading ``:``;
    that is the caller's contract (they are nicks, channels, numbers).
    """
    parts: list[str] = []
    if tags:
        parts.append("@" + format_tags(tags))
    if source:
        parts.append(":" + source)
    parts.append(command)
    if params:
        parts.extend(params[:-1])
        last = params[-1]
        if trailing or not last or " " in last or last[0] == ":":
            last = ":" + last
        parts.append(last)
    return " ".join(parts)


def encode(line: str) -> bytes:
    """The wire bytes of a formatted line: UTF-8 plus CR LF.

    A CR or LF inside (text posted over HTTP may hold newlines) becomes a space and NUL
    is dropped, so one line can never be read as two.
    """
    if "\r" in line or "\n" in line or "\0" in line:
        line = line.replace("\r\n", " ").replace("\r", " ").replace("\n", " ")
        line = line.replace("\0", "")
    return line.encode("utf-8", "replace") + b"\r\n"


def decode(raw: bytes) -> str:
    """Decode a received line leniently: UTF-8, invalid bytes become U+FFFD."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("utf-8", "replace")


def is_pong(raw: bytes) -> bool:
    """Whether a raw line's command is PONG (after any tags and source), without parsing it."""
    words = raw.lstrip().split(None, 3)
    while words and words[0][:1] in (b"@", b":"):
        words.pop(0)
    return bool(words) and words[0].upper() == b"PONG"


def line_too_long(raw: bytes) -> bool:
    """True if ``raw`` (one line without CR LF) is over the limits of the module docstring."""
    if len(raw) <= MAX_BODY:
        return False
    if raw[:1] != b"@":
        return True
    space = raw.find(b" ")
    if space < 0:
        return True
    return space + 1 > MAX_CLIENT_TAGS or len(raw) - space - 1 > MAX_BODY


def server_time(ts: float) -> str:
    """The IRCv3 ``time`` tag value for unix time ``ts``: ``YYYY-MM-DDThh:mm:ss.sssZ``."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def parse_server_time(value: str) -> float | None:
    """The unix time of a ``time``/``timestamp=`` value, or None if it is not one."""
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


class LineSplitter:
    """Cuts received bytes into lines; a line over the limits comes out as ``None``.

    Lines end with LF (a CR before it is removed); empty lines are skipped.  A partial line
    that grows past :data:`MAX_INPUT` without an LF is discarded up to the next LF and
    reported once as ``None``, so the buffer never grows without bound.
    """

    __slots__ = ("buffer", "discarding")

    def __init__(self) -> None:
        self.buffer = b""
        self.discarding = False

    @property
    def empty(self) -> bool:
        """True if no partial line is kept (a new splitter would do the same)."""
        return not self.buffer and not self.discarding

    def feed(self, data: bytes) -> list[bytes | None]:
        """Add ``data``; return the complete lines it finished (``None`` = too long)."""
        if self.buffer:
            data = self.buffer + data
        lines: list[bytes | None] = []
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                break
            if self.discarding:
                self.discarding = False
            else:
                line = data[start:end]
                if line.endswith(b"\r"):
                    line = line[:-1]
                if line:
                    lines.append(None if line_too_long(line) else line)
            start = end + 1
        rest = data[start:] if start else data
        if len(rest) > MAX_INPUT + 1:  # + 1: the CR of a CR LF still to come
            if not self.discarding:
                lines.append(None)
            self.discarding = True
            rest = b""
        elif self.discarding:
            rest = b""
        self.buffer = rest
        return lines
