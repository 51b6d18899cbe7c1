"""Durations, rates and shares as people write them: ``50ms``, ``1.5s``, ``10mbit``, ``1%``.

Pure parsing for ``chat link`` and ``chat compare``; each parser raises ``ValueError`` with
a message fit for a usage error.
"""

from __future__ import annotations

import re

_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)"
_DURATION = re.compile(_NUMBER + r"\s*(us|µs|ms|s|m|min)?", re.IGNORECASE)
_RATE = re.compile(_NUMBER + r"\s*(bit|kbit|mbit|gbit|b|kb|mb|gb)?(?:/s|ps)?", re.IGNORECASE)
_SHARE = re.compile(_NUMBER + r"\s*(%)?")

DURATION_UNITS = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "min": 60.0}
RATE_UNITS = {"bit": 1 / 8, "kbit": 1e3 / 8, "mbit": 1e6 / 8, "gbit": 1e9 / 8,
              "b": 1.0, "kb": 1e3, "mb": 1e6, "gb": 1e9}


def parse_duration(text: str) -> float:
    """Seconds from ``80ms``, ``1.5s``, ``250us``, ``2m`` or a bare number of seconds."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a duration: write it like 50ms, 1.5s or 30")
    value, unit = match.groups()
    return float(value) * DURATION_UNITS[(unit or "s").lower()]


def parse_rate(text: str) -> float:
    """Bytes per second from ``10mbit``, ``512kbit``, ``2MB`` or a bare number of bytes/s."""
    match = _RATE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a rate: write it like 10mbit, 512kbit or 2MB")
    value, unit = match.groups()
    return float(value) * RATE_UNITS[(unit or "b").lower()]


def parse_share(text: str) -> float:
    """A share in [0, 1] from ``1%``, ``0.5%`` or ``0.01``."""
    match = _SHARE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a share: write it like 1% or 0.01")
    value, percent = match.groups()
    share = float(value) / (100.0 if percent else 1.0)
    if share > 1:
        raise ValueError(f"{text!r}: a share is at most 100%")
    return share


def parse_indices(text: str) -> tuple[int, ...]:
    """Datagram numbers from ``3,7,10-12`` (1-based, ranges inclusive), sorted."""
    out: set[int] = set()
    for part in filter(None, (p.strip() for p in text.split(","))):
        first, dash, last = part.partition("-")
        try:
            low, high = int(first), int(last) if dash else int(first)
        except ValueError:
            raise ValueError(f"{part!r} is not a number or a range like 10-12") from None
        if low < 1 or high < low:
            raise ValueError(f"{part!r}: datagrams are numbered from 1, ranges go upwards")
        out.update(range(low, high + 1))
    return tuple(sorted(out))


def format_duration(seconds: float) -> str:
    """``0.05`` -> ``50ms``, ``30`` -> ``30s``, ``0.0001`` -> ``100us``."""
    if seconds == 0:
        return "0"
    if seconds < 1e-3:
        return f"{seconds * 1e6:g}us"
    if seconds < 1:
        return f"{seconds * 1e3:g}ms"
    return f"{seconds:g}s"


def format_rate(bytes_per_s: float) -> str:
    """``1250000`` -> ``10mbit``."""
    bits = bytes_per_s * 8
    for unit, scale in (("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3)):
        if bits >= scale:
            return f"{bits / scale:g}{unit}"
    return f"{bits:g}bit"
