"""What a simple model predicts for each mode, printed next to every measured figure.

The model, per client, for a run in which the sender publishes ``rate`` evenly spaced
messages per second for ``duration`` seconds, then nobody speaks for ``quiet`` seconds,
pollers ask every ``interval`` seconds, and every client sits behind a path with round-trip
time ``rtt`` (each way ``rtt / 2``, give or take ``jitter``; the sender is on the server's
side, so a message's trip is one way, server to client):

* push (irc, ws, sse, udp): an event travels as soon as it exists: latency ``rtt / 2``
  (``±jitter``), no request after setup, one frame per message.  irc needs one TCP
  connection per client; ws one WebSocket plus the short connection of its sign-in; an SSE
  stream holds its HTTP/1.1 connection, so a client needs a second one for its commands
  (join, send); udp needs no connection for its events, one keep-alive HTTP connection for
  its commands, and one request for each loss it recovers (``loss`` x messages).
* longpoll: the held request returns the moment an event exists (``rtt / 2``), but then
  the client must ask again: for one round trip after each delivery it holds no request,
  and a message arriving then waits for the next one, up to one RTT.  With messages
  further apart than an RTT none waits; closer, they all do (uniformly over one RTT).  One
  request per message, plus one per ``wait`` of silence, which comes back empty.
* poll, poll-close: a message waits for the next poll to reach the server, uniformly over
  the interval, then travels back: percentile *p* is ``p x interval + rtt / 2``.  One
  request per interval; a poll is empty when no message fell into its interval:
  ``max(0, 1 - rate x interval)`` of those during the sending, and all of the quiet ones.
  poll keeps one connection, so a request costs one round trip; poll-close opens one per
  request, and pays the handshake first: two round trips per request.  (Its polls leave on
  the same schedule, so the handshake delays every answer, not the message latency.)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

PUSH_MODES = ("irc", "ws", "sse", "udp")
POLL_MODES = ("poll", "poll-close")
# A held request (SSE stream, long poll) occupies its HTTP/1.1 connection; joining and
# sending need another one.
HTTP_HELD_CONNECTIONS = 2.0
# A WebSocket client signs in with one HTTP request on its own short connection, then
# everything travels on the one WebSocket.
WS_CONNECTIONS = 2.0
PERCENTILES = {"p50_ms": 0.50, "p90_ms": 0.90, "p99_ms": 0.99, "max_ms": 1.0}
# Percentile p needs at least this many samples beyond it to be more than noise.
TAIL_SAMPLES = 10


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
    request_ms: float | None   # how long one (non-waiting) request takes, handshake included
    note: str

    def as_dict(self) -> dict[str, float | str | None]:
        return asdict(self)


def _push(rtt_ms: float, jitter_ms: float) -> dict[str, float]:
    """Percentiles of one trip: ``rtt / 2`` with a uniform ``±jitter``."""
    half = rtt_ms / 2
    return {name: max(0.0, half + (2 * share - 1) * jitter_ms)
            for name, share in PERCENTILES.items()}


def predict(mode: str, *, rate: float, duration: float, interval: float,
            window: float | None = None, longpoll_wait: float = 25.0, rtt: float = 0.0,
            jitter: float = 0.0, quiet: float = 0.0, loss: float = 0.0) -> Prediction:
    """The model's figures for ``mode`` (see the module docstring for the model).

    ``window`` is the measured span (seconds) over which requests were counted, when it is
    longer than ``duration + quiet`` (pollers also poll while the run starts and drains).
    Times are seconds, ``loss`` a share.
    """
    messages = rate * duration
    window = max(window or 0.0, duration + quiet)
    rtt_ms, jitter_ms = rtt * 1000, jitter * 1000
    one_way = _push(rtt_ms, jitter_ms)
    if mode in PUSH_MODES:
        connections = {"irc": 1.0, "ws": WS_CONNECTIONS, "sse": HTTP_HELD_CONNECTIONS,
                       "udp": 1.0}[mode]
        notes = {"irc": "push: one hop, one connection, one frame per message",
                 "ws": "push: one hop, one WebSocket; no request but the sign-in, whose "
                       "short connection is the second one counted",
                 "sse": "push: one hop, one frame per message; the stream holds its "
                        "connection, so commands need a second one",
                 "udp": "push: one datagram per message, no connection; a loss costs a "
                        "request over HTTP"}
        return Prediction(**one_way, mean_ms=rtt_ms / 2,
                          requests=messages * loss if mode == "udp" else 0.0,
                          empty_polls=0.0, connections=connections, frames_per_message=1.0,
                          request_ms=None, note=notes[mode])
    if mode in POLL_MODES:
        polls = duration / interval
        empty_share = max(0.0, 1.0 - rate * interval)
        lat = {name: share * interval * 1000 + rtt_ms / 2
               for name, share in PERCENTILES.items()}
        return Prediction(**lat, mean_ms=interval * 500 + rtt_ms / 2,
                          requests=window / interval,
                          empty_polls=polls * empty_share + quiet / interval,
                          connections=1.0 if mode == "poll" else None,
                          frames_per_message=None,
                          request_ms=rtt_ms * (1 if mode == "poll" else 2),
                          note=("poll: wait for the next poll, one request per interval"
                                if mode == "poll" else
                                "poll-close: as poll, plus one TCP handshake per request"))
    if mode == "longpoll":
        busy = rate * rtt >= 1.0  # messages closer than a round trip: each waits for one
        lat = {name: one_way[name] + (share * rtt_ms if busy else 0.0)
               for name, share in PERCENTILES.items()}
        timeouts = quiet / longpoll_wait + (duration / longpoll_wait if rate == 0 else 0.0)
        return Prediction(**lat, mean_ms=rtt_ms / 2 + (rtt_ms / 2 if busy else 0.0),
                          requests=messages + timeouts, empty_polls=timeouts,
                          connections=HTTP_HELD_CONNECTIONS, frames_per_message=1.0,
                          request_ms=None,
                          note="longpoll: one hop, then a round trip without a request "
                               "after each delivery; one request per message")
    raise ValueError(f"unknown mode {mode!r}")


def enough_samples(count: int, share: float) -> bool:
    """True if ``count`` samples pin down the ``share`` percentile: at least
    :data:`TAIL_SAMPLES` of them lie beyond it (p50: 20, p90: 100, p99: 1000); the maximum
    never is."""
    if share >= 1.0:
        return False
    return round(count * (1.0 - share), 6) >= TAIL_SAMPLES
