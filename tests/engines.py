"""A test engine whose writes settle only when the test says so.

It runs the real in-memory engine underneath, so its answers are the real ones; it only
moves *when* they arrive, the way a remote store's would.  That lets pure tests check the
contract the adapters rely on (input held while waiting, continuations in order).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chat.core.pending import Pending
from chat.engine.memory import MemoryEngine

WRITES = ("register", "rename", "quit", "join", "part", "say", "tell", "set_topic",
          "set_away", "set_mode", "kick", "invite", "set_user_modes", "oper", "kill",
          "wallops", "setname", "chghost")


class DeferredEngine(MemoryEngine):
    """MemoryEngine whose writes wait in :attr:`queue` until :meth:`settle`."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.queue: list[tuple[Callable[[], Pending[Any]], Pending[Any]]] = []
        for name in WRITES:
            setattr(self, name, self._deferred(getattr(super(), name)))

    def _deferred(self, write: Callable[..., Pending[Any]]) -> Callable[..., Pending[Any]]:
        def call(*args: Any, **kwargs: Any) -> Pending[Any]:
            later: Pending[Any] = Pending()
            self.queue.append((lambda: write(*args, **kwargs), later))
            return later
        return call

    def settle(self) -> int:
        """Run every queued write in order and settle its Pending; how many ran."""
        count = 0
        while self.queue:
            write, later = self.queue.pop(0)
            done = write()
            if done.error is not None:
                later.fail(done.error)
            else:
                later.resolve(done.value)
            count += 1
        return count
