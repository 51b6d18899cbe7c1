"""The in-memory engine: one process's :class:`~chat.core.hub.Hub` behind the engine interface.

Every write runs on the hub at once, so each returned Pending is already settled; nothing
survives a restart.  The epoch (the boot time in milliseconds) tells clients that ids of
an earlier run name other events.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from ..core.errors import HubError
from ..core.events import Event
from ..core.hub import Hub, Room, Sink, User
from ..core.pending import Pending
from .base import Joined

T = TypeVar("T")


def _run(operation: Callable[[], T]) -> Pending[T]:
    try:
        return Pending.ok(operation())
    except HubError as exc:
        return Pending.failed(exc)


class MemoryEngine:
    """The default engine (satisfies :class:`chat.engine.base.Engine`)."""

    def __init__(self, *, history: int = 1000, nicklen: int = 30, channellen: int = 64,
                 topiclen: int = 390, max_channels: int = 50, epoch: int = 0) -> None:
        self.hub = Hub(history=history, nicklen=nicklen, channellen=channellen,
                       topiclen=topiclen, max_channels=max_channels, epoch=epoch)
        self.epoch = epoch
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

    def user_count(self) -> int:
        return len(self.hub.users)

    def room_count(self) -> int:
        return len(self.hub.rooms)

    def check_nick(self, nick: str) -> None:
        self.hub.check_nick(nick)

    def snapshot(self) -> dict[str, Any]:
        hub = self.hub
        return {"engine": "memory", "users": len(hub.users), "rooms": len(hub.rooms),
                "events": hub.seq, "messages": dict(hub.messages)}

    # --- writes -----------------------------------------------------------------------------
    def register(self, nick: str, user: str, host: str, realname: str, transport: str,
                 sink: Sink | None, now: float) -> Pending[User]:
        return _run(lambda: self.hub.register(nick, user, host, realname, transport, sink, now))

    def rename(self, member: User, nick: str, now: float) -> Pending[list[Event]]:
        return _run(lambda: self.hub.rename(member, nick, now))

    def quit(self, member: User, reason: str, now: float) -> Pending[list[Event]]:
        return _run(lambda: self.hub.quit(member, reason, now))

    def join(self, member: User, channel: str, now: float) -> Pending[Joined]:
        return _run(lambda: Joined(*self.hub.join(member, channel, now)))

    def part(self, member: User, channel: str, reason: str, now: float) -> Pending[Event]:
        return _run(lambda: self.hub.part(member, channel, reason, now))

    def say(self, member: User, channel: str, text: str, now: float,
            kind: str = "message") -> Pending[Event]:
        return _run(lambda: self.hub.say(member, channel, text, now, kind))

    def tell(self, member: User, nick: str, text: str, now: float,
             kind: str = "message") -> Pending[Event]:
        return _run(lambda: self.hub.tell(member, nick, text, now, kind))

    def set_topic(self, member: User, channel: str, topic: str,
                  now: float) -> Pending[Event]:
        return _run(lambda: self.hub.set_topic(member, channel, topic, now))

    def set_away(self, member: User, text: str | None, now: float) -> Pending[None]:
        member.away = text
        return Pending.ok(None)
