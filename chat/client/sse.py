"""A server-sent-events (``text/event-stream``) decoder: body bytes in, events out (pure).

Follows the WHATWG event-stream rules the client needs: lines end in LF, CR LF or CR;
``field: value`` with one optional space after the colon; ``data`` lines join with LF;
a blank line dispatches; lines starting with ``:`` are comments (heartbeats).
"""

from __future__ import annotations

from typing import NamedTuple


class SseEvent(NamedTuple):
    id: str | None
    event: str     # "message" unless the server named it
    data: str


class SseDecoder:
    """Feed body bytes with :meth:`feed`; get back the events completed by them."""

    __slots__ = ("_buf", "_id", "_event", "_data", "comments")

    def __init__(self) -> None:
        self._buf = b""
        self._id: str | None = None
        self._event = ""
        self._data: list[str] = []
        self.comments = 0  # heartbeats seen

    def feed(self, data: bytes) -> list[SseEvent]:
        buf = self._buf + data
        out: list[SseEvent] = []
        # Normalise line ends; a lone CR at the very end may be half of a CR LF: keep it.
        keep_cr = buf.endswith(b"\r")
        if keep_cr:
            buf = buf[:-1]
        buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        *lines, rest = buf.split(b"\n")
        self._buf = rest + (b"\r" if keep_cr else b"")
        for raw in lines:
            event = self._line(raw.decode("utf-8", "replace"))
            if event is not None:
                out.append(event)
        return out

    def _line(self, line: str) -> SseEvent | None:
        if not line:
            if not self._data and self._id is None and not self._event:
                return None
            event = SseEvent(self._id, self._event or "message", "\n".join(self._data))
            self._id, self._event, self._data = None, "", []
            return event
        if line.startswith(":"):
            self.comments += 1
            return None
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        return None
