"""What the hub is made of: users, rooms, bans, result types and the sink protocol (pure).

Users and rooms are plain ``__slots__`` objects changed only by the hub's appliers
(:mod:`chat.core.hub`); adapters read them.  A user costs no container beyond its room
dict: modes are a short string and the invite list lives in the hub, for the few invited.
"""

from __future__ import annotations

import re
from typing import NamedTuple, Protocol

from .errors import HubError
from .events import Cache, Event
from .log import EventLog
from .modes import DEFAULT_MODES, PREFIXES, mask_pattern
from .names import casefold
from .sharing import shared


class Sink(Protocol):
    """Where pushed events go (an IRC connection's session, a WebSocket connection)."""

    def deliver(self, event: Event, cache: Cache) -> None:
        """Queue ``event`` for the client (the broadcast hot path)."""

    def offer(self, event: Event, cache: Cache) -> None:
        """Queue ``event`` only if the client asked for its kind (a cap: typing notices,
        away-notify, setname, chghost, invite-notify)."""

    def dropped(self, reason: str) -> None:
        """The user was removed by someone else's change (a kill, its node lost): close."""


class User:
    """A registered user on any transport.  ``node`` is the server process holding its
    connection ("" for HTTP users, who belong to no connection, and for one process)."""

    __slots__ = ("nick", "key", "user", "host", "userhost", "realname", "transport", "sink",
                 "rooms", "created", "last_active", "inbox", "away", "modes", "node")

    def __init__(self, nick: str, user: str, host: str, realname: str, transport: str,
                 sink: Sink | None, now: float, inbox: EventLog, node: str = "") -> None:
        self.nick = nick
        self.key = casefold(nick)
        self.user = nick if user == nick else user  # one string when they are alike
        self.host = shared(host)
        self.userhost = f"{user}@{host}"  # built once: every event of this user shares it
        self.realname = shared(realname)
        self.transport = transport  # "irc", "http" or "ws"
        self.sink = sink
        # The joined rooms in joining order: a tuple, replaced on join and part, because a
        # user is in few rooms and a one-room tuple costs 48 bytes where a dict costs 184.
        self.rooms: tuple[Room, ...] = ()
        self.created = now
        self.last_active = now
        self.inbox = inbox          # private messages (kept only for pollers)
        self.away: str | None = None
        self.modes = ""             # user modes, letters of USER_MODES in that order
        self.node = node

    def room(self, key: str) -> Room | None:
        """The joined room whose casefolded name is ``key`` (None: not a member)."""
        for room in self.rooms:
            if room.key == key:
                return room
        return None

    def add_room(self, room: Room) -> None:
        if room not in self.rooms:
            self.rooms = (*self.rooms, room)

    def drop_room(self, room: Room) -> None:
        self.rooms = tuple(joined for joined in self.rooms if joined is not room)

    @property
    def prefix(self) -> str:
        return f"{self.nick}!{self.userhost}"

    @property
    def oper(self) -> bool:
        return "o" in self.modes

    @property
    def invisible(self) -> bool:
        return "i" in self.modes

    def __repr__(self) -> str:
        return f"User({self.nick!r}, {self.transport!r})"


class Ban:
    """One entry of a ban list: the mask, who set it and when, and its compiled pattern."""

    __slots__ = ("mask", "by", "ts", "pattern")

    def __init__(self, mask: str, by: str, ts: float) -> None:
        self.mask = mask
        self.by = by
        self.ts = ts
        self.pattern: re.Pattern[str] = mask_pattern(mask)

    def matches(self, user: User) -> bool:
        return self.pattern.match(casefold(user.prefix)) is not None


class Room:
    """A channel: members (in joining order), operators, voices, modes, topic, its log."""

    __slots__ = ("name", "key", "members", "ops", "voices", "topic", "topic_by", "topic_ts",
                 "created", "log", "modes", "password", "limit", "bans")

    def __init__(self, name: str, now: float, log: EventLog) -> None:
        self.name = name
        self.key = casefold(name)
        self.members: dict[str, User] = {}
        self.ops: set[str] = set()
        self.voices: set[str] = set()
        self.topic = ""
        self.topic_by = ""
        self.topic_ts = 0.0
        self.created = now
        self.log = log
        self.modes = DEFAULT_MODES  # the flags set, letters of CHANNEL_FLAGS
        self.password = ""          # the +k key ("" when not set)
        self.limit = 0              # the +l limit (0 when not set)
        self.bans: list[Ban] = []

    @property
    def secret(self) -> bool:
        return "s" in self.modes

    def is_op(self, user: User) -> bool:
        return user.key in self.ops

    def is_voiced(self, user: User) -> bool:
        return user.key in self.voices

    def prefixes(self, user: User) -> str:
        """Every membership prefix of ``user`` here, highest first (``@+``, ``+``, ``""``)."""
        key = user.key
        return (("@" if key in self.ops else "")
                + ("+" if key in self.voices else ""))

    def nick_with_prefix(self, user: User, multi: bool = False) -> str:
        """``@nick`` (the highest prefix only, or all with ``multi``: multi-prefix)."""
        prefixes = self.prefixes(user)
        return (prefixes if multi else prefixes[:1]) + user.nick

    def banned(self, user: User) -> bool:
        return any(ban.matches(user) for ban in self.bans) if self.bans else False

    def may_speak(self, user: User) -> bool:
        """Whether ``user`` may send here: members unless +m or banned; ops and voices
        always; outsiders only without +n."""
        key = user.key
        if key in self.ops or key in self.voices:
            return True
        if key not in self.members:
            return "n" not in self.modes and not self.banned(user)
        return "m" not in self.modes and not self.banned(user)

    def mode_params(self, members_view: bool) -> list[str]:
        """``+ntk`` and its parameters as 324 shows them; key and limit only to members."""
        flags = "+" + self.modes + ("k" if self.password else "") + ("l" if self.limit else "")
        params = [flags]
        if members_view:
            if self.password:
                params.append(self.password)
            if self.limit:
                params.append(str(self.limit))
        return params

    def __repr__(self) -> str:
        return f"Room({self.name!r}, {len(self.members)} members)"


PREFIX_TOKEN = "(" + "".join(PREFIXES) + ")" + "".join(PREFIXES.values())


class Joined(NamedTuple):
    """A join's outcome: the room, and the join event (None if already a member)."""

    room: Room
    event: Event | None


class ModeResult(NamedTuple):
    """A mode change's outcome: the MODE event (None if nothing changed) and the changes
    the hub skipped, as errors to tell the requester (401, 441, 478)."""

    event: Event | None
    refused: tuple[HubError, ...] = ()


class Census(NamedTuple):
    """What LUSERS reports."""

    users: int
    invisible: int
    opers: int
    rooms: int
    max_users: int


class WhoWas(NamedTuple):
    """What WHOWAS remembers of a nick that quit or changed."""

    nick: str
    user: str
    host: str
    realname: str
    ts: float
