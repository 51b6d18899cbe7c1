"""``GET /metrics``: the server's counters in Prometheus' text format (pure: no I/O).

A ``prometheus_client`` *collector* reads the counters the adapters already keep
(:class:`~chat.core.stats.Stats`, the engine's snapshot) when a scrape comes, and turns
them into metric families; nothing is added to the hot path (the adapters keep bumping
plain integers).  The registry is this server's own, not the library's global one, so
several servers in one process (the tests) do not mix.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

from ..core.stats import Stats, TransportStats

CONTENT_TYPE = CONTENT_TYPE_LATEST.encode("ascii")
TRANSPORTS = ("irc", "http", "ws")
SENDQ_CUTS = ("sendq_exceeded", "sse_slow")  # reap reasons that are a slow-reader cut


class StatsCollector(Collector):
    """Metric families made from the counters at scrape time."""

    def __init__(self, stats: Stats, hub: Callable[[], dict[str, Any]],
                 uptime: Callable[[], float]) -> None:
        self.stats = stats
        self.hub = hub
        self.uptime = uptime

    def _by_transport(self) -> list[tuple[str, TransportStats]]:
        return [(name, getattr(self.stats, name)) for name in TRANSPORTS]

    def collect(self) -> Iterator[Metric]:
        per = self._by_transport()
        yield _gauge("chat_connections_open", "Connections open now", per,
                     lambda t: t.connections_open)
        for field, text in (("connections_accepted", "Connections accepted"),
                            ("connections_refused", "Connections refused"),
                            ("requests", "HTTP requests, IRC lines, WebSocket frames received"),
                            ("messages", "Messages accepted"),
                            ("deliveries", "Events delivered to clients"),
                            ("bytes_in", "Bytes read"), ("bytes_out", "Bytes written"),
                            ("pings_sent", "Heartbeat pings sent"),
                            ("pongs_received", "Heartbeat pongs received")):
            yield _counter(f"chat_{field}", text, per,
                           lambda t, f=field: getattr(t, f))  # type: ignore[misc]
        yield _labelled("chat_reaps", "Connections and sessions closed, by reason", per,
                        "reason", lambda t: t.reaps)
        yield _labelled("chat_timeouts", "Timeouts, by kind", per, "kind",
                        lambda t: t.timeouts)
        yield _labelled("chat_errors", "Error answers, by code", per, "code",
                        lambda t: t.errors)
        yield _counter("chat_sendq_cuts", "Slow readers cut off (SendQ exceeded, slow SSE)",
                       per, lambda t: sum(t.reaps[r] for r in SENDQ_CUTS))
        http = self.stats.http
        polls = CounterMetricFamily("chat_polls", "Poll answers, empty or with events",
                                    labels=["result"])
        polls.add_metric(["empty"], http.empty_polls)
        polls.add_metric(["full"], http.polls - http.empty_polls)
        yield polls
        yield _gauge("chat_long_polls_open", "Long polls held now", per,
                     lambda t: t.long_polls_open)
        yield _gauge("chat_sse_streams_open", "SSE streams open now", per,
                     lambda t: t.sse_streams_open)
        yield _gauge("chat_sessions_open", "HTTP sessions open now", per,
                     lambda t: t.sessions_open)
        rtt = HistogramMetricFamily("chat_heartbeat_rtt_seconds",
                                    "Server ping to the client's next input",
                                    labels=["transport"])
        for name, t in per:
            histogram = t.heartbeat_rtt
            if name != "http":
                rtt.add_metric([name], histogram.cumulative(), histogram.total)
        yield rtt
        hub = self.hub()
        events = CounterMetricFamily("chat_events", "Hub events since the store began")
        events.add_metric([], int(hub.get("events", 0)))
        yield events
        for key, text in (("users", "Users on the hub"), ("rooms", "Rooms on the hub")):
            gauge = GaugeMetricFamily(f"chat_{key}", text)
            gauge.add_metric([], int(hub.get(key, 0)))
            yield gauge
        up = GaugeMetricFamily("chat_uptime_seconds", "Seconds since the server started")
        up.add_metric([], self.uptime())
        yield up


def _gauge(name: str, text: str, per: list[tuple[str, TransportStats]],
           value: Callable[[TransportStats], int]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, text, labels=["transport"])
    for transport, t in per:
        family.add_metric([transport], value(t))
    return family


def _counter(name: str, text: str, per: list[tuple[str, TransportStats]],
             value: Callable[[TransportStats], int]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, text, labels=["transport"])
    for transport, t in per:
        family.add_metric([transport], value(t))
    return family


def _labelled(name: str, text: str, per: list[tuple[str, TransportStats]], label: str,
              counts: Callable[[TransportStats], Any]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, text, labels=["transport", label])
    for transport, t in per:
        for key, count in sorted(counts(t).items()):
            family.add_metric([transport, str(key)], count)
    return family


class Metrics:
    """This server's registry, rendered on request."""

    def __init__(self, stats: Stats, hub: Callable[[], dict[str, Any]],
                 uptime: Callable[[], float]) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(StatsCollector(stats, hub, uptime))

    def render(self) -> bytes:
        """The exposition text of every metric, as of now."""
        return generate_latest(self.registry)
