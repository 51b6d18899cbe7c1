"""A server-sent-events (``text/event-stream``) decoder: body bytes in, events out (pure).

Follows the WHATWG HTML "interpreting an event stream" rules: a leading BOM is dropped;
lines end in LF, CR LF or CR; ``field: value`` with one optional space after the colon,
a line without a colon being a field with an empty value; ``data`` lines join with LF;
a blank line dispatches, unless no ``data`` line came (an ``id``-only block still sets
the id); the last event id lasts until the next ``id`` line (one holding NUL is ignored);
``retry`` with digits only sets the reconnection time; lines starting with ``:`` are
comments (heartbeats); an event cut off by the end of the stream is not dispatched.
"""

from __future__ import annotations

from typing import NamedTuple

BOM = b"\xef\xbb\xbf"


class SseEvent(NamedTuple):
    id: str        # the last event id at dispatch ("" if none was ever set)
    event: str     # "message" unless the server named it
    data: str


class SseDecoder:
    """Feed body bytes with :meth:`feed`; get back the events completed by them.

    ``retry`` is the reconnection time in milliseconds the server asked for (None until it
    sends one); ``comments`` counts comment lines (heartbeats).
    """

    __slots__ = ("_buf", "_started", "_last_id", "_event", "_data", "retry", "comments")

    def __init__(self) -> None:
        self._buf = b""
        self._started = False
        self._last_id = ""
        self._event = ""
        self._data: list[str] = []
        self.retry: int | None = None
        self.comments = 0

    def feed(self, data: bytes) -> list[SseEvent]:
        buf = self._buf + data
        if not self._started:
            if len(buf) < len(BOM) and BOM.startswith(buf):
                self._buf = buf
                return []  # maybe the start of a BOM: wait for more
            self._started = True
            buf = buf.removeprefix(BOM)
        # Normalise line ends; a lone CR at the very end may be half of a CR LF: keep it.
        keep_cr = buf.endswith(b"\r")
        if keep_cr:
            buf = buf[:-1]
        buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        *lines, rest = buf.split(b"\n")
        self._buf = rest + (b"\r" if keep_cr else b"")
        out: list[SseEvent] = []
        for raw in lines:
            event = self._line(raw.decode("utf-8", "replace"))
            if event is not None:
                out.append(event)
        return out

    def _line(self, line: str) -> SseEvent | None:
        if not line:
            return self._dispatch()
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
        elif name == "id":
            if "\0" not in value:
                self._last_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry = int(value)
        return None

    def _dispatch(self) -> SseEvent | None:
        data, event = self._data, self._event
        self._data, self._event = [], ""
        if not data:
            return None
        return SseEvent(self._last_id, event or "message", "\n".join(data))
