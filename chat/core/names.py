"""Nick and channel name rules shared by both transports (pure).

Case-insensitive comparison uses the ``rfc1459`` casemapping advertised in 005: ASCII
letters plus ``[]\\~`` folding to ``{}|^``.  HTTP rooms are the IRC channels ``#<room>``
whose room part matches ``[A-Za-z0-9_-]{1,50}``.  Client-only message tags are named
``+[vendor/]name``.
"""

from __future__ import annotations

import re

CASEMAPPING = "rfc1459"
_FOLD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ[]\\~", "abcdefghijklmnopqrstuvwxyz{}|^")

# First character: a letter or one of the specials; then letters, digits, specials, '-'.
_NICK_RE = re.compile(r"[A-Za-z\[\]\\`_^{|}][A-Za-z0-9\[\]\\`_^{|}-]*\Z")
# Channel: '#' then anything but NUL, BEL, CR, LF, space, comma and colon.
_CHANNEL_RE = re.compile(r"#[^\x00\x07\r\n ,:]+\Z")
ROOM_RE = re.compile(r"[A-Za-z0-9_-]{1,50}\Z")
# An IRCv3 client-only tag name: '+', an optional vendor ('example.com/'), a key name.
_CLIENT_TAG_RE = re.compile(r"\+(?:[A-Za-z0-9.-]+/)?[A-Za-z0-9-]+\Z")
CLIENT_TAG_DATA = 4094  # bytes of tag data a client may send (IRCv3 message-tags)
CHANTYPES = "#"


def casefold(name: str) -> str:
    """Fold ``name`` with the rfc1459 casemapping (the key for every nick/channel lookup).

    A name that is folded already is returned itself, so a lower-case nick and its key are
    one string (a user, a member entry and a nick index hold one copy, not two)."""
    key = name.translate(_FOLD)
    return name if key == name else key


def valid_nick(nick: str, nicklen: int) -> bool:
    """True if ``nick`` is a legal nick no longer than ``nicklen``."""
    return 0 < len(nick) <= nicklen and _NICK_RE.match(nick) is not None


def valid_channel(name: str, channellen: int) -> bool:
    """True if ``name`` is a legal channel name (``#`` prefix) no longer than ``channellen``."""
    return 1 < len(name) <= channellen and _CHANNEL_RE.match(name) is not None


def valid_client_tag(name: str) -> bool:
    """True if ``name`` is a client-only tag name (``+typing``, ``+draft/reply``)."""
    return _CLIENT_TAG_RE.match(name) is not None


def room_to_channel(room: str) -> str | None:
    """The IRC channel for HTTP room ``room``, or None if ``room`` is not a legal room name."""
    return "#" + room if ROOM_RE.match(room) else None


def channel_to_room(channel: str) -> str:
    """The HTTP room name for an IRC channel (the part after ``#``)."""
    return channel[1:]
