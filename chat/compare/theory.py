"""What a simple model predicts for each mode, printed next to every measured figure.

The model, per client, for a run of ``duration`` seconds in which the sender publishes
``rate`` evenly spaced messages per second and pollers ask every ``interval`` seconds:

* push (irc, ws, sse): an event travels as soon as it exists, so latency is one hop on
  loopback (well under a millisecond), no request is made after setup, and every message
  is one frame.  irc needs one TCP connection per client; ws one WebSocket, plus the short
  connection of its one sign-in request; an SSE stream holds its HTTP/1.1 connection, so a
  client needs a second one for its commands (join, send).
* poll, poll-close: a message waits for the next poll; the arrival phase is uniform over
  the interval, so latency percentile *p* is ``p x interval`` (mean ``interval / 2``); one
  request per interval; a poll is empty when no message fell into its interval, which with
  evenly spaced messages happens for ``max(0, 1 - rate x interval)`` of them.  poll keeps
  one connection; poll-close opens one per request (a handshake each).
* longpoll: the held request returns the moment an event exists, so latency is one hop
  plus, at worst, one round trip; about one request per message (fewer when messages come
  faster than a round trip), and empty answers only when the wait runs out.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

PUSH_MODES = ("irc", "ws", "sse")
POLL_MODES = ("poll", "poll-close")
# A held request (SSE stream, long poll) occupies its HTTP/1.1 connection; joining and
# sending need another one.
HTTP_HELD_CONNECTIONS = 2.0
# A WebSocket client signs in with one HTTP request on its own short connection, then
# everything travels on the one WebSocket.
WS_CONNECTIONS = 2.0
PERCENTILES = {"p50_ms": 0.50, "p90_ms": 0.90, "p99_ms": 0.99, "max_ms": 1.0}


@dataclass(frozen=True, slots=True)
class Prediction:
    """Model figures for one mode (per client; latency in milliseconds)."""

    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    requests: float            # per client during the run
    empty_polls: float         # per client during the run
    connections: float | None  # per client, setup included (None: "one per request")
    frames_per_message: float | None
    note: str

    def as_dict(self) -> dict[str, float | str | None]:
        return asdict(self)


def predict(mode: str, *, rate: float, duration: float, interval: float,
            window: float | None = None, longpoll_wait: float = 25.0) -> Prediction:
    """The model's figures for ``mode`` (see the module docstring for the model).

    ``window`` is the measured span (seconds) over which requests were counted, when it is
    longer than ``duration`` (pollers also poll while the run starts and drains).
    """
    messages = rate * duration
    window = max(window or duration, duration)
    if mode == "irc":
        return Prediction(0.0, 0.0, 0.0, 0.0, 0.0, requests=0.0, empty_polls=0.0,
                          connections=1.0, frames_per_message=1.0,
                          note="push: one hop, one connection, one frame per message")
    if mode == "ws":
        return Prediction(0.0, 0.0, 0.0, 0.0, 0.0, requests=0.0, empty_polls=0.0,
                          connections=WS_CONNECTIONS, frames_per_message=1.0,
                          note="push: one hop, one WebSocket; no request but the sign-in, "
                               "whose short connection is the second one counted")
    if mode == "sse":
        return Prediction(0.0, 0.0, 0.0, 0.0, 0.0, requests=0.0, empty_polls=0.0,
                          connections=HTTP_HELD_CONNECTIONS, frames_per_message=1.0,
                          note="push: one hop, one frame per message; the stream holds its "
                               "connection, so commands need a second one")
    if mode in POLL_MODES:
        polls = duration / interval
        empty_share = max(0.0, 1.0 - rate * interval)
        lat = {name: share * interval * 1000 for name, share in PERCENTILES.items()}
        return Prediction(**lat, mean_ms=interval * 500, requests=window / interval,
                          empty_polls=polls * empty_share,
                          connections=1.0 if mode == "poll" else None,
                          frames_per_message=None,
                          note=("poll: wait for the next poll, one request per interval"
                                if mode == "poll" else
                                "poll-close: as poll, plus one TCP handshake per request"))
    if mode == "longpoll":
        timeouts = duration / longpoll_wait if rate == 0 else 0.0
        return Prediction(0.0, 0.0, 0.0, 0.0, 0.0, requests=messages + timeouts,
                          empty_polls=timeouts, connections=HTTP_HELD_CONNECTIONS,
                          frames_per_message=1.0,
                          note="longpoll: one hop plus at most a round trip, "
                               "one request per message")
    raise ValueError(f"unknown mode {mode!r}")
