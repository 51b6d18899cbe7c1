"""What irc mode adds to :mod:`chat.irc.message` (pure: no socket, no clock).

Parsing, formatting, tag unescaping and server-time come from the server's own module;
here is only what a client needs on top: reading a line leniently (junk is ignored, never
raised), reply accessors, the chat event a line carries, text cut to fit a line (in every
mode), and which ``ERROR`` lines are final.
"""

from __future__ import annotations

from ..irc.message import Message, ParseError, decode, parse, parse_server_time
from .model import ChatEvent

MAX_TEXT = 400     # bytes of text per PRIVMSG line when the target is not known
LINE_BYTES = 510   # an IRC line without its CR LF
HOST_BUDGET = 63   # the longest host name our prefix may carry
MIN_TEXT = 64      # even with a huge nick and target, send something per line

EVENT_KINDS = {"PRIVMSG": "message", "NOTICE": "notice", "JOIN": "join", "PART": "part",
               "QUIT": "quit", "NICK": "nick", "TOPIC": "topic", "KICK": "kick",
               "MODE": "mode", "INVITE": "invite"}


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
    return int(value) if value.isascii() and value.isdigit() and len(value) < 19 else 0


def tag_time(tags: dict[str, str] | None, default: float) -> float:
    """The ``time`` tag (server-time) as unix seconds, or ``default``."""
    when = parse_server_time(tags.get("time", "")) if tags else None
    return default if when is None else when


def chat_event(line: Message, room: str | None, now: float) -> ChatEvent | None:
    """The chat event ``line`` carries (None for protocol traffic and server notices).

    ``room`` overrides the room read from the target (a history batch names it); ``now``
    is the arrival time, and the event time when the line has no ``time`` tag.  The fields
    are those of the HTTP API's event objects (a ``/me`` keeps its CTCP ACTION text; the
    front end shows it), so every mode reports the same events alike.
    """
    cmd = line.command
    if cmd not in EVENT_KINDS or (cmd in ("PRIVMSG", "NOTICE") and not from_user(line)):
        return None
    nick = nick_of(line)
    target, to, text = param(line, 0), "", ""
    args: tuple[str, ...] = ()
    if cmd in ("PRIVMSG", "NOTICE"):
        text = param(line, 1)
        if not target.startswith("#"):
            to, target = target, ""
    elif cmd in ("PART", "TOPIC"):
        text = param(line, 1)
    elif cmd in ("QUIT", "NICK"):
        text, target = param(line, 0), ""
    elif cmd == "KICK":  # KICK #room nick :reason
        text, args = param(line, 2), (param(line, 1),)
    elif cmd == "MODE":  # MODE #room +ov bob carol (a user mode, MODE nick +i, is none)
        if not target.startswith("#"):
            return None
        text, args = param(line, 1), tuple(line.params[2:])
    elif cmd == "INVITE":  # INVITE nick #room: private, naming the room
        to, target = target, param(line, 1)
    if room is None:
        room = target[1:] if target.startswith("#") else ""
    return ChatEvent(room=room, id=msgid(line.tags), ts=tag_time(line.tags, now),
                     kind=EVENT_KINDS[cmd], nick=nick, text=text, received=now, to=to,
                     args=args)


def text_limit(nick: str, target: str) -> int:
    """Bytes of text one message to ``target`` may carry, in every mode.

    The server relays it as ``:nick!user@host PRIVMSG target :text``, which must fit in
    510 bytes (512 with CR LF).  Our user@host differs by mode and server (HTTP users are
    ``nick@http``), so the limit budgets the most it can be (``~nick`` and a 63-byte host):
    the same text is then cut into the same pieces whatever the mode.
    """
    prefix = f":{nick}!~{nick}@{'h' * HOST_BUDGET} PRIVMSG {target} :"
    return max(MIN_TEXT, LINE_BYTES - len(prefix.encode("utf-8")))


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Split ``text`` into pieces of at most ``limit`` UTF-8 bytes, as IRC clients do.

    A piece ends after the last space of its second half when there is one (the space stays
    with it, so the pieces join back into the text), else at ``limit`` bytes, never inside
    a character.  Line breaks become spaces: a message is one line.
    """
    data = text.replace("\r", " ").replace("\n", " ").encode("utf-8")
    if len(data) <= limit:
        return [data.decode("utf-8")]
    pieces: list[str] = []
    while data:
        cut = min(limit, len(data))
        if cut < len(data):
            space = data.rfind(b" ", limit // 2, cut)
            if space >= 0:
                cut = space + 1
            while (data[cut] & 0xC0) == 0x80:  # not inside a character
                cut -= 1
        pieces.append(data[:cut].decode("utf-8"))
        data = data[cut:]
    return pieces


# The server's ERROR texts after which it does not want us back (``Closing Link: <reason>``
# for everything but a restart); ping timeouts are network trouble, so we come back.
_COME_BACK = ("ping timeout", "server shutting down", "registration timeout")


def close_is_final(error: str) -> bool:
    """True if the server's ``ERROR`` text means it closed us on purpose (idle, flood, kill).

    ``Server shutting down`` (a restart) and a ping timeout (the network) are not final:
    the client reconnects after those, as after a connection lost without an ERROR line.
    """
    reason = error.removeprefix("Closing Link:").strip().lower()
    if not error.startswith("Closing Link:") or not reason:
        return False
    return not reason.startswith(_COME_BACK)
