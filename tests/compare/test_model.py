"""Pure parts the link brought to the lab: the model with a round trip, the schedule with a
burst, sample counts, the socket table."""

from __future__ import annotations

import pytest

from chat.compare.plot import model_cdf
from chat.compare.sender import schedule
from chat.compare.sockets import parse_table, time_wait
from chat.compare.theory import enough_samples, predict

TABLE = """  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000
   1: 0100007F:1F90 0100007F:9C40 06 00000000:00000000 03:00001234 00000000     0
   2: 0100007F:9C41 0100007F:1F90 06 00000000:00000000 03:00001234 00000000     0
   3: 0100007F:9C42 0100007F:1F90 06 00000000:00000000 03:00001234 00000000     0
   4: 0100007F:9C43 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1000
"""


def test_time_wait_is_counted_per_side_for_known_peers_only() -> None:
    """Port 8080 (0x1F90): one TIME_WAIT on its side, one on a known client's; a TIME_WAIT
    from a port that never connected through the lab is someone else's."""
    rows = parse_table(TABLE)
    assert rows[0] == (8080, 0, "0A") and len(rows) == 5
    counts = time_wait({8080: [0x9C40, 0x9C41, 0x9C43]}, rows)
    assert counts == {8080: {"server_side": 1, "client_side": 1}}


def test_round_trips_in_the_model() -> None:
    """Push: half a round trip; poll: the wait plus half a round trip, a request one round
    trip (a new connection: two); long poll waits a round trip when messages come faster."""
    push = predict("irc", rate=5, duration=10, interval=1, rtt=0.1, jitter=0.01)
    assert push.p50_ms == pytest.approx(50) and push.max_ms == pytest.approx(60)
    poll = predict("poll", rate=5, duration=10, interval=1, rtt=0.1)
    assert poll.p90_ms == pytest.approx(950) and poll.request_ms == pytest.approx(100)
    assert predict("poll-close", rate=5, duration=10, interval=1,
                   rtt=0.1).request_ms == pytest.approx(200)
    slow = predict("longpoll", rate=5, duration=10, interval=1, rtt=0.1)
    fast = predict("longpoll", rate=20, duration=10, interval=1, rtt=0.1)
    assert slow.p99_ms == pytest.approx(50) and fast.p99_ms == pytest.approx(50 + 99)
    quiet = predict("poll", rate=5, duration=10, interval=1, quiet=5)
    assert quiet.empty_polls == pytest.approx(5)
    assert predict("udp", rate=5, duration=10, interval=1, loss=0.01).requests == \
        pytest.approx(0.5)


def test_a_burst_is_due_half_way() -> None:
    """Four messages a second for two seconds, and a burst of three at one second."""
    dues = schedule(100.0, rate=4, duration=2, burst=3)
    assert dues == [100.0, 100.25, 100.5, 100.75, 101.0, 101.0, 101.0, 101.0, 101.25,
                    101.5, 101.75]
    assert dues == sorted(dues)


def test_a_percentile_needs_ten_samples_beyond_it() -> None:
    """p50 from 20 samples, p90 from 100, p99 from 1000; the maximum never."""
    assert enough_samples(20, 0.5) and not enough_samples(19, 0.5)
    assert enough_samples(100, 0.9) and not enough_samples(999, 0.99)
    assert not enough_samples(10**6, 1.0)


def test_the_plotted_model_cdf_is_uniform_between_its_percentiles() -> None:
    """Poll at 1 s through 50 ms: the model's CDF is straight in latency (uniform), so the
    plot gets points between the percentiles (a log axis would bend two far apart points
    into a line the model never drew): a quarter of the way at 275 ms."""
    th = predict("poll", rate=10, duration=10, interval=1.0, rtt=0.05)
    points = model_cdf(th.as_dict())
    assert points[0] == (pytest.approx(25.0), 0.0) and points[-1][1] == 100.0
    assert [p for _ms, p in points] == sorted(p for _ms, p in points)
    near = min(points, key=lambda point: abs(point[0] - 275.0))
    assert near[0] == pytest.approx(275.0, abs=15) and near[1] == pytest.approx(25.0, abs=2)
