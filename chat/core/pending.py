"""The outcome of an engine operation, available now or later (pure: no event loop).

The in-memory engine answers every call at once, so its :class:`Pending` objects are
already settled when the caller gets them and :meth:`Pending.then` runs its callback
immediately.  An engine backed by a remote store (Redis) settles them when the store has
answered: the adapters are written against :meth:`Pending.then` and work with both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from .errors import HubError

T = TypeVar("T")
OnOk = Callable[[T], None]
OnError = Callable[[HubError], None]


class Pending(Generic[T]):
    """A value or a :class:`HubError`, settled once; callbacks run in registration order."""

    __slots__ = ("done", "value", "error", "_callbacks")

    def __init__(self) -> None:
        self.done = False
        self.value: T | None = None
        self.error: HubError | None = None
        self._callbacks: list[tuple[OnOk[T], OnError | None]] | None = None

    @classmethod
    def ok(cls, value: T) -> Pending[T]:
        """A Pending already settled with ``value``."""
        pending: Pending[T] = cls()
        pending.done = True
        pending.value = value
        return pending

    @classmethod
    def failed(cls, error: HubError) -> Pending[T]:
        """A Pending already settled with ``error``."""
        pending: Pending[T] = cls()
        pending.done = True
        pending.error = error
        return pending

    def resolve(self, value: T) -> None:
        """Settle with ``value`` and run the callbacks (a second settle is an error)."""
        self._settle(value, None)

    def fail(self, error: HubError) -> None:
        """Settle with ``error`` and run the error callbacks."""
        self._settle(None, error)

    def then(self, on_ok: OnOk[T], on_error: OnError | None = None) -> None:
        """Call ``on_ok(value)`` or ``on_error(error)`` when settled (now, if it is).

        Without ``on_error`` an error is dropped: the caller has decided it does not care
        (a QUIT while the connection is closing, say).
        """
        if self.done:
            self._call(on_ok, on_error)
        elif self._callbacks is None:
            self._callbacks = [(on_ok, on_error)]
        else:
            self._callbacks.append((on_ok, on_error))

    def result(self) -> T:
        """The value (raises the error; RuntimeError if not settled yet)."""
        if not self.done:
            raise RuntimeError("Pending.result() before it settled")
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]

    def _settle(self, value: T | None, error: HubError | None) -> None:
        if self.done:
            raise RuntimeError("Pending settled twice")
        self.done = True
        self.value = value
        self.error = error
        callbacks, self._callbacks = self._callbacks, None
        for on_ok, on_error in callbacks or ():
            self._call(on_ok, on_error)

    def _call(self, on_ok: OnOk[T], on_error: OnError | None) -> None:
        if self.error is None:
            on_ok(self.value)  # type: ignore[arg-type]
        elif on_error is not None:
            on_error(self.error)
