"""Pure tests of heartbeat deadlines and the flood token bucket (no loop, no clock)."""

from __future__ import annotations

import math

from chat.core.bucket import FULL, TokenBucket, spend, wait_for
from chat.core.heartbeat import Beat, Heartbeat, HeartbeatPolicy

POLICY = HeartbeatPolicy(registration_timeout=30, ping_interval=25, ping_timeout=20,
                         idle_timeout=3600)


def test_registration_timeout() -> None:
    """An unregistered connection times out at connect + registration_timeout, not before."""
    hb = Heartbeat(POLICY, 100.0)
    assert hb.deadline == 130.0
    assert hb.check(129.9) is Beat.NOTHING
    assert hb.check(130.0) is Beat.REGISTRATION_TIMEOUT


def test_registration_timeout_disabled() -> None:
    """registration_timeout 0 means never."""
    hb = Heartbeat(HeartbeatPolicy(0, 25, 20, 0), 0.0)
    assert hb.deadline == math.inf
    assert hb.check(1e9) is Beat.NOTHING


def test_ping_after_silence_then_timeout() -> None:
    """Silence for ping_interval sends one PING; no answer within ping_timeout times out."""
    hb = Heartbeat(POLICY, 0.0)
    hb.register(10.0)
    assert hb.deadline == 35.0
    assert hb.check(35.0) is Beat.SEND_PING
    assert hb.deadline == 55.0
    assert hb.check(40.0) is Beat.NOTHING  # a single PING, not one per check
    assert hb.check(55.0) is Beat.PING_TIMEOUT
    assert hb.silent_for(55.0) == 45


def test_any_line_answers_the_ping_and_moves_the_deadline_lazily() -> None:
    """The answer to a PING puts the deadline at the next PING; later lines move it only
    when it is checked (lazily)."""
    hb = Heartbeat(POLICY, 0.0)
    hb.register(0.0)
    assert hb.check(25.0) is Beat.SEND_PING
    hb.received(30.0)
    assert hb.deadline == 55.0  # no longer the ping timeout (45)
    hb.received(40.0)
    assert hb.deadline == 55.0  # unchanged until checked (lazy)
    assert hb.check(55.0) is Beat.NOTHING
    assert hb.deadline == 65.0
    assert hb.check(65.0) is Beat.SEND_PING


def test_pings_keep_their_interval_when_the_timeout_is_longer() -> None:
    """ping_interval 1, ping_timeout 2, every PING answered at once: a PING a second (the
    next one does not wait for the old PING's timeout)."""
    hb = Heartbeat(HeartbeatPolicy(30, 1, 2, 0), 0.0)
    hb.register(0.0)
    pings = []
    now = 0.0
    while now < 10:
        now = hb.deadline
        if hb.check(now) is Beat.SEND_PING:
            pings.append(now)
            hb.received(now + 0.01)
    assert [round(t, 2) for t in pings] == [1.0, 2.01, 3.02, 4.03, 5.04, 6.05, 7.06, 8.07,
                                             9.08, 10.09]


def test_idle_timeout_despite_pongs() -> None:
    """Answering pings without other commands still ends in an idle timeout."""
    hb = Heartbeat(HeartbeatPolicy(30, 25, 20, 100), 0.0)
    hb.register(0.0)
    now = 0.0
    beats = []
    while now < 200:
        now = hb.deadline
        beat = hb.check(now)
        beats.append(beat)
        if beat is Beat.SEND_PING:
            hb.received(now + 1)  # the PONG
        if beat is Beat.IDLE_TIMEOUT:
            break
    assert beats[-1] is Beat.IDLE_TIMEOUT and now == 100.0
    assert Beat.PING_TIMEOUT not in beats


def test_activity_postpones_idle_timeout() -> None:
    """A real command resets the idle clock."""
    hb = Heartbeat(HeartbeatPolicy(30, 0, 0, 100), 0.0)
    hb.register(0.0)
    hb.active(90.0)
    assert hb.check(100.0) is Beat.NOTHING
    assert hb.deadline == 190.0


def test_ping_timeout_zero_never_times_out() -> None:
    """ping_timeout 0: PINGs are sent but never time out."""
    hb = Heartbeat(HeartbeatPolicy(30, 5, 0, 0), 0.0)
    hb.register(0.0)
    assert hb.check(5.0) is Beat.SEND_PING
    assert hb.deadline == math.inf
    assert hb.check(1e6) is Beat.NOTHING


def test_policy_shortest_ignores_disabled() -> None:
    """shortest() is the smallest enabled limit."""
    assert HeartbeatPolicy(0, 25, 20, 0).shortest() == 20
    assert HeartbeatPolicy(0, 0, 0, 0).shortest() == math.inf


def test_flood_budget_burst_then_rate() -> None:
    """A burst of N lines passes, then one line per 1/rate seconds."""
    budget = TokenBucket(3, 2.0, 0.0)
    assert [budget.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert budget.wait(0.0) == 0.5
    assert not budget.take(0.49)
    assert budget.take(0.5)
    assert not budget.take(0.5)


def test_a_bucket_knows_when_it_is_full_again() -> None:
    """full(): refilled to the burst, so a new bucket would do the same."""
    budget = TokenBucket(3.0, 2.0, 0.0)
    assert budget.full(0.0)
    budget.take(0.0)
    assert not budget.full(0.49) and budget.full(0.5)
    budget.take(0.5)
    budget.take(0.5)
    assert not budget.full(1.49) and budget.full(1.5)


def test_the_budget_as_one_float_is_the_bucket() -> None:
    """spend()/wait_for() on a bare float (what an IRC connection keeps) take and refuse
    exactly what a TokenBucket does, line after line, at any spacing."""
    bucket, full_at = TokenBucket(4, 3.0, 0.0), FULL
    times = [0.0, 0.0, 0.1, 0.1, 0.1, 0.2, 0.5, 0.5, 0.6, 2.0, 2.0, 2.0, 2.0, 2.0, 2.1]
    taken = []
    for now in times:
        after = spend(full_at, now, 4.0, 3.0)
        assert (after is not None) is bucket.take(now)
        assert wait_for(after or full_at, now, 4.0, 3.0) == bucket.wait(now)
        taken.append(after is not None)
        full_at = after if after is not None else full_at
    assert taken.count(False) > 0 and taken.count(True) > 4


def test_a_budget_without_refill_spends_its_burst_once() -> None:
    """rate 0: the burst and then nothing, ever (wait is infinite)."""
    budget = TokenBucket(2, 0.0, 100.0)
    assert [budget.take(100.0 + t) for t in (0, 0, 1000)] == [True, True, False]
    assert budget.wait(5000.0) == math.inf and not budget.full(5000.0)


def test_flood_budget_refills_only_up_to_burst() -> None:
    """A long pause refills at most the burst."""
    budget = TokenBucket(2, 1.0, 0.0)
    budget.take(0.0)
    budget.take(0.0)
    assert [budget.take(1000.0) for _ in range(3)] == [True, True, False]


def test_an_answered_ping_brings_the_next_one_an_interval_on() -> None:
    """With a ping timeout longer than the interval, an answered PING does not push the next
    one out to where the first would have timed out: the period is the interval."""
    policy = HeartbeatPolicy(registration_timeout=0, ping_interval=1.0, ping_timeout=5.0,
                             idle_timeout=0)
    hb = Heartbeat(policy, 0.0)
    hb.register(0.0)
    assert hb.check(1.0) is Beat.SEND_PING
    hb.received(1.1)  # the PONG
    assert hb.deadline == 2.1
    assert hb.check(2.1) is Beat.SEND_PING
