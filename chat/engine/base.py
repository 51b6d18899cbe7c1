"""The engine interface: what every adapter may ask of the shared chat state.

An engine = ordering (one id sequence), fan-out to this process's sinks and watchers,
presence (users, rooms, members) and bounded history, in the spirit of Centrifugo's
engines.  :mod:`chat.engine.memory` keeps it all in this process (the default);
an engine backed by a remote store answers the same calls for several processes.

Contract:

* **Reads** answer from this process's view at once: rooms, users, members and each
  room's :class:`~chat.core.hub.EventLog` (history since an id, one-shot watchers).
* **Writes** return a :class:`~chat.core.pending.Pending`: settled at once by the memory
  engine, when the store has answered by a remote one.  A refusal is its ``error``
  (a :class:`~chat.core.errors.HubError`), never an exception from the call.  Writes from
  one caller are applied in the order they were made.
* Events reach sinks and watchers of this process through the hub's push (see
  :mod:`chat.core.hub`), whichever process the write came from.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from ..core.events import Event
from ..core.hub import Joined, Room, Sink, User
from ..core.model import Census, ModeResult, WhoWas
from ..core.modes import Change
from ..core.pending import Pending

__all__ = ["Engine", "Joined", "ModeResult"]


class Engine(Protocol):
    """The calls adapters make (see the module docstring for the contract)."""

    epoch: int          # identifies this run of the store: cursors of another run are gaps
    nicklen: int
    topiclen: int
    node: str           # this process's name among several ("" alone)
    local_session_expiry: bool  # True: the API expires idle HTTP sessions itself
    replicated: bool    # True: this view may lag writes made through other nodes
    draining: bool      # set by the assembler at shutdown: writes but leaving are refused

    # --- lifecycle (the assembler's, not the adapters') -------------------------------------
    async def start(self) -> None: ...
    async def close(self) -> None: ...

    # --- reads: this process's view, answered at once ---------------------------------------
    def find_user(self, nick: str) -> User | None: ...
    def find_room(self, channel: str) -> Room | None: ...
    def rooms(self) -> Iterable[Room]: ...
    def users(self) -> Iterable[User]: ...
    def user_count(self) -> int: ...
    def room_count(self) -> int: ...
    def census(self) -> Census:
        """Users, invisible users, operators, rooms, the most users at once (LUSERS)."""
    def invited_to(self, member: User) -> list[str]:
        """The channels ``member`` holds an invitation to."""
    def was(self, nick: str) -> list[WhoWas]:
        """What WHOWAS remembers of ``nick``, newest first."""
    def check_nick(self, nick: str) -> None:
        """Raise NickInvalid / NickInUse unless ``nick`` looks free from here."""
    def snapshot(self) -> dict[str, Any]:
        """Figures for ``/api/stats`` (users, rooms, events, messages by transport, ...)."""
    def user_of_token(self, token_hash: str) -> User | None:
        """The HTTP user a session token (by its hash) belongs to, on any node."""
    def sessions_seen(self, keys: Iterable[str]) -> None:
        """HTTP users (keys) that made requests here lately (for cross-node expiry)."""
    def sync(self) -> Pending[None]:
        """Settles once this view has applied every write made anywhere until now."""

    # --- writes: settled now or later ---------------------------------------------------------
    def register(self, nick: str, user: str, host: str, realname: str, transport: str,
                 sink: Sink | None, now: float, token_hash: str = "") -> Pending[User]: ...
    def rename(self, member: User, nick: str, now: float) -> Pending[list[Event]]: ...
    def quit(self, member: User, reason: str, now: float) -> Pending[list[Event]]: ...
    def join(self, member: User, channel: str, now: float,
             key: str = "") -> Pending[Joined]: ...
    def part(self, member: User, channel: str, reason: str, now: float) -> Pending[Event]: ...
    def say(self, member: User, channel: str, text: str, now: float,
            kind: str = "message", tags: tuple[str, ...] = ()) -> Pending[Event]:
        """A message, notice or (``kind="tagmsg"``) tag-only message to a channel;
        ``tags`` are client-only tags as ``(name, value, ...)``."""
    def tell(self, member: User, nick: str, text: str, now: float,
             kind: str = "message", tags: tuple[str, ...] = ()) -> Pending[Event]:
        """The same to one user."""
    def set_topic(self, member: User, channel: str, topic: str,
                  now: float) -> Pending[Event]: ...
    def set_away(self, member: User, text: str | None, now: float) -> Pending[None]: ...

    # --- running a channel ----------------------------------------------------------------
    def set_mode(self, member: User, channel: str, changes: list[Change],
                 now: float) -> Pending[ModeResult]:
        """Channel mode changes, parsed by :func:`chat.core.modes.parse_channel_modes`."""
    def kick(self, member: User, channel: str, nick: str, reason: str,
             now: float) -> Pending[Event]: ...
    def invite(self, member: User, nick: str, channel: str, now: float) -> Pending[Event]: ...

    # --- users and server operators -------------------------------------------------------
    def set_user_modes(self, member: User, added: str, removed: str,
                       now: float) -> Pending[str]:
        """The change made, as ``+i-w`` ("" if none)."""
    def oper(self, member: User, name: str, now: float) -> Pending[None]:
        """Make ``member`` a server operator (its password was checked by the caller)."""
    def kill(self, member: User, nick: str, reason: str, now: float) -> Pending[list[Event]]:
        """Disconnect ``nick`` (an operator's request): a quit the victim did not ask for."""
    def wallops(self, member: User, text: str, now: float) -> Pending[Event]: ...
    def setname(self, member: User, realname: str, now: float) -> Pending[Event]: ...
    def chghost(self, member: User, nick: str, user: str, host: str,
                now: float) -> Pending[Event]: ...
