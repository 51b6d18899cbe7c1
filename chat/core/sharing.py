"""What many connections share instead of keeping each (pure): equal values kept once, and a
server's fixed parts kept on a per-server class instead of in every connection's slots."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, TypeVar, cast

H = TypeVar("H", bound=Hashable)
C = TypeVar("C", bound=type)


class Shared:
    """One copy of values many users send alike: the host of a gateway or NAT they all
    come through, the realname their client fills in, its JOINs' ``(realname,)``.  The first
    copy seen stands for the equal ones after it (a 58-byte string less per user each).
    Bounded: forgets all once ``limit`` are kept.  (Not ``sys.intern``: its table would
    keep an entry for every distinct realname alive.)"""

    __slots__ = ("seen", "limit")

    def __init__(self, limit: int = 1024) -> None:
        self.seen: dict[Hashable, Hashable] = {}
        self.limit = limit

    def __call__(self, value: H) -> H:
        seen = self.seen
        kept = seen.get(value)
        if kept is None:
            if len(seen) >= self.limit:
                seen.clear()
            kept = seen[value] = value
        return kept  # type: ignore[return-value]  # equal to value, so of its type


shared = Shared()


def per_server(cls: C, **parts: Any) -> C:
    """A subclass of ``cls`` (a ``__slots__`` class) holding ``parts`` as class attributes:
    what every instance of one server shares costs no slot per instance."""
    return cast(C, type(cls.__name__, (cls,), {"__slots__": (), "__module__": cls.__module__,
                                               **parts}))
