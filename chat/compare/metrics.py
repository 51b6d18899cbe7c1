"""What the lab measures, without any I/O: message stamps, per-client tallies, latency.

The sender stamps every message text with its sequence number and its *intended* send time
(``lab <seq> <intended>``); receivers parse the stamp and record ``received - intended`` in
an HdrHistogram (microseconds), so a sender or server that stalls shows the stall as latency
instead of quietly sending later (no coordinated omission).  A :class:`Tally` per client
counts new, duplicated and out-of-order sequence numbers; losses are the expected numbers a
client never saw.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from typing import Any

from hdrh.histogram import HdrHistogram

STAMP = "lab"
LATENCY_MIN_US = 1
LATENCY_MAX_US = 600_000_000  # ten minutes: anything slower is clamped, not dropped
SIGNIFICANT_FIGURES = 3
# Percentiles sampled for the CDF in --json and --plot (dense towards the tail).
CDF_PERCENTILES = (tuple(float(p) for p in range(0, 90, 2))
                   + (90.0, 92.0, 94.0, 95.0, 96.0, 97.0, 98.0, 99.0, 99.5, 99.9, 99.99, 100.0))


def stamp_text(seq: int, intended: float) -> str:
    """The text of lab message ``seq`` meant to be sent at unix time ``intended``."""
    return f"{STAMP} {seq} {intended:.6f}"


def parse_stamp(text: str) -> tuple[int, float] | None:
    """``(seq, intended)`` from a lab message text, or None for any other text."""
    parts = text.split(" ")
    if len(parts) != 3 or parts[0] != STAMP:
        return None
    try:
        return int(parts[1]), float(parts[2])
    except ValueError:
        return None


def new_histogram() -> HdrHistogram:
    """An empty latency histogram in microseconds (1 µs .. 10 min, 3 significant figures)."""
    return HdrHistogram(LATENCY_MIN_US, LATENCY_MAX_US, SIGNIFICANT_FIGURES)


def record_latency(hist: HdrHistogram, seconds: float) -> None:
    """Record one latency; values outside the trackable range are clamped to it."""
    micros = int(seconds * 1_000_000)
    hist.record_value(min(max(micros, LATENCY_MIN_US), LATENCY_MAX_US))


def encode_histogram(hist: HdrHistogram) -> str:
    """The histogram as text (HdrHistogram's compressed, base64 encoding)."""
    encoded: bytes = hist.encode()
    return encoded.decode("ascii")


def decode_histogram(text: str) -> HdrHistogram:
    """The inverse of :func:`encode_histogram` (an empty string gives an empty histogram)."""
    if not text:
        return new_histogram()
    base64.b64decode(text, validate=True)  # a clear error for garbage, before hdrh sees it
    hist: HdrHistogram = HdrHistogram.decode(text.encode("ascii"))
    return hist


def latency_summary(hist: HdrHistogram) -> dict[str, float | int | None]:
    """Count, mean, p50, p90, p99 and max of ``hist`` in milliseconds (None when empty)."""
    count = int(hist.get_total_count())
    if count == 0:
        return {"count": 0, "mean_ms": None, "p50_ms": None, "p90_ms": None,
                "p99_ms": None, "max_ms": None}
    return {"count": count,
            "mean_ms": round(hist.get_mean_value() / 1000, 3),
            "p50_ms": hist.get_value_at_percentile(50) / 1000,
            "p90_ms": hist.get_value_at_percentile(90) / 1000,
            "p99_ms": hist.get_value_at_percentile(99) / 1000,
            "max_ms": hist.get_max_value() / 1000}


def cdf_points(hist: HdrHistogram) -> list[tuple[float, float]]:
    """``(latency_ms, percentile)`` pairs for plotting the latency CDF."""
    if hist.get_total_count() == 0:
        return []
    return [(hist.get_value_at_percentile(p) / 1000, p) for p in CDF_PERCENTILES]


class Tally:
    """One receiver's view of the sequence numbers: new, duplicate and out-of-order."""

    __slots__ = ("seen", "unique", "duplicates", "out_of_order", "highest")

    def __init__(self) -> None:
        self.seen = bytearray()
        self.unique = 0
        self.duplicates = 0
        self.out_of_order = 0
        self.highest = -1

    def record(self, seq: int) -> bool:
        """Count ``seq``; True if it is new to this receiver."""
        if seq < 0:
            return False
        if seq >= len(self.seen):
            self.seen.extend(bytes(max(seq + 1 - len(self.seen), 1024)))
        if self.seen[seq]:
            self.duplicates += 1
            return False
        self.seen[seq] = 1
        self.unique += 1
        if seq < self.highest:
            self.out_of_order += 1
        else:
            self.highest = seq
        return True

    def has(self, seq: int) -> bool:
        return 0 <= seq < len(self.seen) and self.seen[seq] == 1

    def missing(self, expected: Iterable[int]) -> int:
        """How many of ``expected`` this receiver never saw."""
        return sum(1 for seq in expected if not self.has(seq))


def expected_seqs(sent: int, failed: Iterable[int]) -> list[int]:
    """The sequence numbers every receiver should see: all sent, minus refused sends."""
    refused = set(failed)
    return [seq for seq in range(sent) if seq not in refused]


def numeric_delta(after: Mapping[str, Any], before: Mapping[str, Any]) -> dict[str, Any]:
    """``after - before`` for every number in two nested dicts (missing keys count as 0)."""
    out: dict[str, Any] = {}
    for key, value in after.items():
        old = before.get(key)
        if isinstance(value, Mapping):
            out[key] = numeric_delta(value, old if isinstance(old, Mapping) else {})
        elif isinstance(value, bool) or not isinstance(value, int | float):
            continue
        else:
            base = old if isinstance(old, int | float) and not isinstance(old, bool) else 0
            out[key] = round(value - base, 6) if isinstance(value, float) else value - base
    return out


def sum_counters(rows: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """Field-wise sum of numeric counter dicts (None and non-numbers are skipped)."""
    total: dict[str, float] = {}
    for row in rows:
        for key, value in row.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                total[key] = total.get(key, 0) + value
    return total
