"""QUIT and NICK concern a user, not a room: show each once, and know who is where (pure).

The hub gives a user's QUIT (or NICK change) one event per room it was in, with
consecutive ids (one *fan-out*; nothing else is numbered in between).  IRC sends a
co-member one line carrying the id of the first shared room; the HTTP API has one event
in each room's feed.  :class:`FanOut` recognises the copies of a fan-out already shown,
whatever the order they come in (HTTP feeds run independently; a ``/mode`` switch
replays a room from its cursor), so every mode shows a QUIT or NICK once.

:class:`Rosters` is irc mode's view of who is in each joined room (NAMES, then JOIN,
PART, KICK, QUIT and NICK lines): it tells which rooms a QUIT or NICK line, which names
no room, belongs to, so the cursors of exactly those rooms can move past it.
"""

from __future__ import annotations

from collections import deque

from ..core.names import casefold
from .model import ChatEvent

FANOUT_KINDS = frozenset({"quit", "nick"})
RECENT = 64    # fan-outs remembered
SPAN = 64      # ids a fan-out may span: one per room the user was in (CHANLIMIT is 50)


class _Group:
    """The copies of one fan-out seen so far."""

    __slots__ = ("kind", "nick", "text", "id", "rooms", "closed_at")

    def __init__(self, event: ChatEvent) -> None:
        self.kind = event.kind
        self.nick = casefold(event.nick)
        self.text = event.text
        self.id = event.id
        self.rooms = {event.room} if event.room else set()
        self.closed_at = 0  # the first id after it that is not a copy (0: none seen yet)

    def has_copy(self, event: ChatEvent) -> bool:
        """True if ``event`` is this fan-out's copy for a room not seen yet."""
        return (event.kind == self.kind and event.text == self.text
                and casefold(event.nick) == self.nick and abs(event.id - self.id) < SPAN
                and (self.closed_at == 0 or event.id < self.closed_at)
                and not (event.room and event.room in self.rooms))


class FanOut:
    """Which QUIT/NICK events are copies of one already shown.

    :meth:`first` must see every event shown, of every kind: any event numbered above a
    fan-out that is not one of its copies bounds it (its ids are consecutive), which makes
    the recognition exact once such an event has arrived; before that, copies are told by
    kind, nick, text, ids within :data:`SPAN` and one copy per room.
    """

    __slots__ = ("groups", "open")

    def __init__(self) -> None:
        self.groups: deque[_Group] = deque(maxlen=RECENT)
        self.open: list[_Group] = []  # groups no later event has bounded yet

    def first(self, event: ChatEvent) -> bool:
        """False if ``event`` is a copy of a QUIT/NICK already shown (its room is noted)."""
        if event.id <= 0:
            return True  # nothing to recognise it by
        if event.kind in FANOUT_KINDS:
            for group in self.groups:
                if group.has_copy(event):
                    if event.room:
                        group.rooms.add(event.room)
                    return False
        self._bound(event.id)
        if event.kind in FANOUT_KINDS:
            group = _Group(event)
            self.groups.append(group)
            self.open.append(group)
        return True

    def _bound(self, event_id: int) -> None:
        """A new event numbered ``event_id``: fan-outs below it are complete."""
        if self.open:
            still_open = []
            for group in self.open:
                if event_id > group.id:
                    group.closed_at = event_id
                else:
                    still_open.append(group)
            self.open = still_open


class Rosters:
    """Who is in each room we joined, by casefolded nick (irc mode)."""

    __slots__ = ("rooms",)

    def __init__(self) -> None:
        self.rooms: dict[str, set[str]] = {}

    def joined(self, room: str, nick: str, me: bool) -> None:
        """``nick`` joined ``room``; our own join starts the room's roster afresh."""
        if me:
            self.rooms[room] = set()
        self.rooms.setdefault(room, set()).add(casefold(nick))

    def names(self, room: str, names: str) -> None:
        """A 353 line: space-separated nicks, each maybe prefixed by ``@`` or ``+``."""
        members = self.rooms.setdefault(room, set())
        for name in names.split():
            members.add(casefold(name.lstrip("@+~&%").split("!", 1)[0]))

    def parted(self, room: str, nick: str, me: bool) -> None:
        if me:
            self.rooms.pop(room, None)
        else:
            self.rooms.get(room, set()).discard(casefold(nick))

    def rooms_of(self, nick: str) -> list[str]:
        """The rooms ``nick`` is in with us."""
        key = casefold(nick)
        return [room for room, members in self.rooms.items() if key in members]

    def quit(self, nick: str) -> None:
        key = casefold(nick)
        for members in self.rooms.values():
            members.discard(key)

    def renamed(self, old: str, new: str) -> None:
        old_key, new_key = casefold(old), casefold(new)
        for members in self.rooms.values():
            if old_key in members:
                members.discard(old_key)
                members.add(new_key)
