"""The flush pacer (adaptive coalescing): windows follow the measured cost of a flush."""

from __future__ import annotations

from chat.core.pacing import FlushPacer


def test_first_flush_goes_out_at_once() -> None:
    """Nothing flushed yet: no wait."""
    assert FlushPacer(0.01, 0.25, 0.05).delay(100.0) == 0.0


def test_cheap_flushes_keep_the_floor() -> None:
    """A flush that cost less than share x floor leaves the window at --flush-interval."""
    pacer = FlushPacer(0.01, 0.25, 0.05)
    pacer.flushed(100.0, 0.0001)
    assert pacer.window == 0.01
    assert abs(pacer.delay(100.004) - 0.006) < 1e-9
    assert pacer.delay(100.02) == 0.0  # a line after a quiet spell goes out at once


def test_costly_flushes_widen_the_window_to_their_share() -> None:
    """A flush that cost 5 ms with share 0.25 makes the next one wait 20 ms: writing takes
    a quarter of the time."""
    pacer = FlushPacer(0.01, 0.25, 0.05)
    pacer.flushed(100.0, 0.005)
    assert abs(pacer.window - 0.02) < 1e-12
    assert abs(pacer.delay(100.0) - 0.02) < 1e-12


def test_window_is_capped() -> None:
    """However costly the flush, the window never exceeds --flush-max."""
    pacer = FlushPacer(0.01, 0.25, 0.05)
    pacer.flushed(100.0, 1.0)
    assert pacer.window == 0.05


def test_window_shrinks_again_when_the_load_falls() -> None:
    """The window follows the last flush's cost, so it falls back to the floor."""
    pacer = FlushPacer(0.01, 0.25, 0.05)
    pacer.flushed(100.0, 0.01)
    assert pacer.window == 0.04
    pacer.flushed(100.04, 0.0)
    assert pacer.window == 0.01


def test_share_zero_is_a_fixed_window() -> None:
    """--flush-share 0: the old behaviour, a fixed --flush-interval window."""
    pacer = FlushPacer(0.01, 0.0, 0.05)
    pacer.flushed(100.0, 1.0)
    assert pacer.window == 0.01


def test_interval_zero_flushes_every_turn() -> None:
    """--flush-interval 0: every loop turn, whatever the cost."""
    pacer = FlushPacer(0.0, 0.25, 0.05)
    pacer.flushed(100.0, 1.0)
    assert pacer.delay(100.0) == 0.0
