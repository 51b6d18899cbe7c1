"""The open-loop sender: messages leave on a fixed schedule, whatever the server does.

Message ``seq`` is due at ``t0 + seq / rate``; a ``burst`` adds that many messages all due
half way through (what overflows a small receive buffer, or catches a long poll between
two requests); a ``quiet`` spell with no message follows the sending (what makes polls
come back empty).  The sender sleeps until the due time, sends,
and moves on; when it falls behind (a slow send, a stalled server) it sends the overdue
messages at once rather than shifting the schedule.  Each text carries its due time
(:func:`chat.compare.metrics.stamp_text`) and receivers measure latency from it, so time
spent waiting behind a stall is counted, not omitted (the "coordinated omission" trap of
closed-loop load generators that only time the requests they managed to send).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from .metrics import stamp_text

SendFn = Callable[[str], Awaitable[None]]


def message_count(rate: float, duration: float, burst: int = 0) -> int:
    """How many messages a run of ``duration`` seconds at ``rate`` per second sends."""
    return max(0, round(rate * duration)) + burst


def due_time(t0: float, seq: int, rate: float) -> float:
    """When message ``seq`` of the even schedule is due (unix seconds)."""
    return t0 + seq / rate


def schedule(t0: float, rate: float, duration: float, burst: int = 0) -> list[float]:
    """Every message's due time in order: the even schedule, plus ``burst`` messages due
    together half way through."""
    even = [due_time(t0, seq, rate) for seq in range(max(0, round(rate * duration)))]
    middle = t0 + duration / 2
    cut = sum(1 for due in even if due <= middle)
    return even[:cut] + [middle] * burst + even[cut:]


@dataclass(slots=True)
class SendReport:
    """What the sender did: how many it sent, which sends failed, how far it lagged."""

    sent: int = 0
    failed: list[int] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    max_lag_ms: float = 0.0
    total_lag_ms: float = 0.0

    def as_dict(self) -> dict[str, object]:
        attempts = max(self.sent, 1)
        return {"sent": self.sent, "failed": self.failed, "errors": dict(self.errors),
                "max_lag_ms": round(self.max_lag_ms, 3),
                "mean_lag_ms": round(self.total_lag_ms / attempts, 3)}


async def send_open_loop(send: SendFn, *, t0: float, rate: float, duration: float,
                         burst: int = 0, quiet: float = 0.0,
                         clock: Callable[[], float] = time.time,
                         sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                         progress: Callable[[int], None] | None = None) -> SendReport:
    """Send ``message_count(rate, duration)`` stamped messages on schedule from ``t0``.

    ``send`` is awaited for each message in order (so receivers see the sequence in order);
    a send that raises is recorded in ``failed`` and the schedule goes on.  Returns no
    earlier than ``t0 + duration + quiet``: the last message may be due well before the end
    (at 0.2 msg/s for 20 s, at 15 s), and the run must still last the duration asked for.
    """
    report = SendReport()
    for seq, due in enumerate(schedule(t0, rate, duration, burst)):
        delay = due - clock()
        if delay > 0:
            await sleep(delay)
        lag_ms = max(0.0, (clock() - due) * 1000)
        report.max_lag_ms = max(report.max_lag_ms, lag_ms)
        report.total_lag_ms += lag_ms
        try:
            await send(stamp_text(seq, due))
        except Exception as exc:  # any refusal is counted; the schedule must go on
            report.failed.append(seq)
            report.errors[f"{type(exc).__name__}: {exc}"[:120]] += 1
        report.sent = seq + 1
        if progress is not None:
            progress(report.sent)
    if (rest := t0 + duration + quiet - clock()) > 0:
        await sleep(rest)
    return report
