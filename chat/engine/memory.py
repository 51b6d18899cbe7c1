"""The in-memory engine: one process's :class:`~chat.core.hub.Hub` behind the engine interface.

Every write runs on the hub at once, so each returned Pending is already settled; nothing
survives a restart.  The epoch (the boot time in milliseconds) tells clients that a new run
began, and ids never repeat across runs: they start at the epoch times :data:`ID_BASE`, so
a cursor from an earlier run never names another event (it would take a run averaging a
million events a second to reach the next run's first id).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from ..core.errors import HubError, ShuttingDown
from ..core.events import Event
from ..core.hub import Hub, Joined, Op, Room, Sink, User
from ..core.model import Census, ModeResult, WhoWas
from ..core.modes import Change
from ..core.pending import Pending

T = TypeVar("T")
ID_BASE = 1000  # ids per millisecond of boot time: a new run's ids start above the old's
LEAVING = frozenset({"quit", "part"})  # what a draining server still accepts
DRAINING = ShuttingDown("*", "Server shutting down: not accepted, try again later")


def _empty() -> list[Event]:
    return []


class MemoryEngine:
    """The default engine (satisfies :class:`chat.engine.base.Engine`)."""

    local_session_expiry = True  # HTTP sessions expire by this process's own sweep
    node = ""                    # one process: users need no owner node
    replicated = False           # this view is the whole truth: it never lags
    draining = False             # shutdown has begun: only leaving is still accepted

    def __init__(self, *, history: int = 1000, nicklen: int = 30, channellen: int = 64,
                 topiclen: int = 390, max_channels: int = 50, epoch: int = 0,
                 server_name: str = "chat.local") -> None:
        self.hub = Hub(history=history, nicklen=nicklen, channellen=channellen,
                       topiclen=topiclen, max_channels=max_channels, epoch=epoch,
                       server_name=server_name)
        self.epoch = epoch
        self.hub.seq = epoch * ID_BASE
        self.nicklen = nicklen
        self.topiclen = topiclen

    async def start(self) -> None:
        """Nothing to connect to."""

    async def close(self) -> None:
        """Nothing to disconnect from."""

    # --- reads ------------------------------------------------------------------------------
    def find_user(self, nick: str) -> User | None:
        return self.hub.find_user(nick)

    def find_room(self, channel: str) -> Room | None:
        return self.hub.find_room(channel)

    def rooms(self) -> Iterable[Room]:
        return self.hub.rooms.values()

    def users(self) -> Iterable[User]:
        return self.hub.users.values()

    def user_count(self) -> int:
        return len(self.hub.users)

    def census(self) -> Census:
        return self.hub.census()

    def invited_to(self, member: User) -> list[str]:
        return self.hub.invited_to(member)

    def was(self, nick: str) -> list[WhoWas]:
        return self.hub.was(nick)

    def room_count(self) -> int:
        return len(self.hub.rooms)

    def check_nick(self, nick: str) -> None:
        self.hub.check_nick(nick)

    def user_of_token(self, token_hash: str) -> User | None:
        return self.hub.user_of_token(token_hash)

    def sessions_seen(self, keys: Iterable[str]) -> None:
        """Nothing to tell: sessions expire by the API's own sweep here."""

    def sync(self) -> Pending[None]:
        """This view is always current."""
        return Pending.ok(None)

    def snapshot(self) -> dict[str, Any]:
        hub = self.hub
        base = self.epoch * ID_BASE  # where this store's ids began (0: a store from before)
        return {"engine": "memory", "users": len(hub.users), "rooms": len(hub.rooms),
                "events": hub.seq - base if hub.seq >= base else hub.seq,
                "last_id": hub.seq, "messages": dict(hub.messages)}

    # --- writes ---------------------------------------------------------------------------
    def submit(self, propose: Callable[[], Op | None], absent: Callable[[], T],
               sink: Sink | None = None) -> Pending[T]:
        """Check and build the Op (``propose``), then :meth:`carry_out` it.

        ``absent`` gives the result when there is nothing to do (``propose`` returned
        None).  A refusal, here or later, is the Pending's error.
        """
        try:
            op = propose()
        except HubError as exc:
            return Pending.failed(exc)
        if op is None:
            return Pending.ok(absent())
        if self.draining and op.kind not in LEAVING:
            return Pending.failed(DRAINING)
        return self.carry_out(op, sink)

    def carry_out(self, op: Op, sink: Sink | None) -> Pending[Any]:
        """Number ``op`` and apply it, settled at once (a shared store's engine orders it
        first: this is the one method it overrides)."""
        return Pending.ok(self.hub.run(op, sink))

    def register(self, nick: str, user: str, host: str, realname: str, transport: str,
                 sink: Sink | None, now: float, token_hash: str = "") -> Pending[User]:
        hub = self.hub
        node = "" if transport == "http" else self.node  # HTTP users belong to no node
        return self.submit(lambda: hub.propose_register(nick, user, host, realname, transport,
                                                        now, node, token_hash), _never, sink)

    def rename(self, member: User, nick: str, now: float) -> Pending[list[Event]]:
        return self.submit(lambda: self.hub.propose_rename(member, nick, now), _empty)

    def quit(self, member: User, reason: str, now: float) -> Pending[list[Event]]:
        return self.submit(lambda: self.hub.propose_quit(member, reason, now), _empty)

    def join(self, member: User, channel: str, now: float,
             key: str = "") -> Pending[Joined]:
        return self.submit(lambda: self.hub.propose_join(member, channel, now, key),
                           lambda: self.hub.already_joined(channel))

    def part(self, member: User, channel: str, reason: str, now: float) -> Pending[Event]:
        return self.submit(lambda: self.hub.propose_part(member, channel, reason, now), _never)

    def say(self, member: User, channel: str, text: str, now: float,
            kind: str = "message", tags: tuple[str, ...] = ()) -> Pending[Event]:
        return self.submit(lambda: self.hub.propose_say(member, channel, text, now, kind,
                                                        tags), _never)

    def tell(self, member: User, nick: str, text: str, now: float,
             kind: str = "message", tags: tuple[str, ...] = ()) -> Pending[Event]:
        return self.submit(lambda: self.hub.propose_tell(member, nick, text, now, kind,
                                                         tags), _never)

    def set_topic(self, member: User, channel: str, topic: str,
                  now: float) -> Pending[Event]:
        return self.submit(lambda: self.hub.propose_topic(member, channel, topic, now), _never)

    def set_away(self, member: User, text: str | None, now: float) -> Pending[None]:
        return self.submit(lambda: self.hub.propose_away(member, text, now), _never)

    # --- running a channel ----------------------------------------------------------------
    def set_mode(self, member: User, channel: str, changes: list[Change],
                 now: float) -> Pending[ModeResult]:
        refused: list[HubError] = []  # what the proposal left out, for the requester
        done: Pending[ModeResult | None] = self.submit(
            lambda: self.hub.propose_mode(member, channel, changes, now, refused), _no_mode)
        result: Pending[ModeResult] = Pending()
        done.then(lambda value: result.resolve(
            (value or ModeResult(None))._replace(refused=tuple(refused))), result.fail)
        return result

    def kick(self, member: User, channel: str, nick: str, reason: str,
             now: float) -> Pending[Event]:
        return self.submit(lambda: self.hub.propose_kick(member, channel, nick, reason, now),
                           _never)

    def invite(self, member: User, nick: str, channel: str, now: float) -> Pending[Event]:
        return self.submit(lambda: self.hub.propose_invite(member, nick, channel, now), _never)

    # --- users and server operators -------------------------------------------------------
    def set_user_modes(self, member: User, added: str, removed: str,
                       now: float) -> Pending[str]:
        return self.submit(lambda: self.hub.propose_umode(member, added, removed, now),
                           str)

    def oper(self, member: User, name: str, now: float) -> Pending[None]:
        return self.submit(lambda: self.hub.propose_oper(member, name, now), _never)

    def kill(self, member: User, nick: str, reason: str, now: float) -> Pending[list[Event]]:
        return self.submit(lambda: self.hub.propose_kill(member, nick, reason, now), _never)

    def wallops(self, member: User, text: str, now: float) -> Pending[Event]:
        return self.submit(lambda: self.hub.propose_wallops(member, text, now), _never)

    def setname(self, member: User, realname: str, now: float) -> Pending[Event]:
        return self.submit(lambda: self.hub.propose_setname(member, realname, now), _never)

    def chghost(self, member: User, nick: str, user: str, host: str,
                now: float) -> Pending[Event]:
        return self.submit(lambda: self.hub.propose_chghost(member, nick, user, host, now),
                           _never)


def _no_mode() -> ModeResult | None:
    return None


def _never() -> Any:
    raise AssertionError("this proposal always returns an Op")
