"""Pure parts of the lab: message stamps, tallies, deltas, the model, the open-loop schedule."""

from __future__ import annotations

import pytest

from chat.compare.deadpeer import dead_peer_paragraph
from chat.compare.metrics import (
    Tally,
    decode_histogram,
    encode_histogram,
    expected_seqs,
    latency_summary,
    new_histogram,
    numeric_delta,
    parse_stamp,
    record_latency,
    stamp_text,
)
from chat.compare.options import OptionError, parse_modes, parse_settings
from chat.compare.report import cost_sentences, pace, socket_sentences, udp_table
from chat.compare.sender import due_time, message_count, send_open_loop
from chat.compare.theory import predict


def test_stamp_round_trip_and_foreign_text() -> None:
    """A stamped text gives back its sequence number and intended time; other text None."""
    assert parse_stamp(stamp_text(42, 1700000000.25)) == (42, 1700000000.25)
    for text in ("hello", "lab x 1.0", "lab 1", "lab 1 2 3", ""):
        assert parse_stamp(text) is None


def test_tally_counts_duplicates_out_of_order_and_missing() -> None:
    """Repeats are duplicates, a number below the highest seen is out of order."""
    tally = Tally()
    assert [tally.record(s) for s in (0, 2, 1, 2, 5000)] == [True, True, True, False, True]
    assert (tally.unique, tally.duplicates, tally.out_of_order) == (4, 1, 1)
    assert tally.missing(range(4)) == 1  # 3 never came
    assert tally.missing(expected_seqs(6, failed=[3, 4, 5])) == 0


def test_histogram_survives_encoding_and_summarises_in_ms() -> None:
    """Worker histograms travel as text; the summary is in milliseconds."""
    hist = new_histogram()
    for seconds in (0.001, 0.002, 0.5, -1.0):  # a negative latency is clamped, not lost
        record_latency(hist, seconds)
    back = decode_histogram(encode_histogram(hist))
    summary = latency_summary(back)
    assert summary["count"] == 4
    assert summary["max_ms"] == pytest.approx(500, rel=0.01)
    assert latency_summary(new_histogram())["p50_ms"] is None


def test_numeric_delta_walks_nested_counters() -> None:
    """Stats deltas subtract numbers at every depth and skip the rest."""
    after = {"irc": {"pings_sent": 7, "reaps": {"ping_timeout": 2}}, "uptime_s": 9.5, "v": "x"}
    before = {"irc": {"pings_sent": 3, "reaps": {}}, "uptime_s": 4.0}
    assert numeric_delta(after, before) == {
        "irc": {"pings_sent": 4, "reaps": {"ping_timeout": 2}}, "uptime_s": 5.5}


def test_model_for_polling_and_push() -> None:
    """Polling waits half an interval on average and asks once per interval; push does not."""
    poll = predict("poll", rate=0.5, duration=10, interval=1)
    assert (poll.mean_ms, poll.p99_ms, poll.requests, poll.empty_polls) == (500, 990, 10, 5)
    assert predict("poll-close", rate=5, duration=10, interval=1).empty_polls == 0
    irc = predict("irc", rate=5, duration=10, interval=1)
    assert (irc.p50_ms, irc.requests, irc.connections) == (0, 0, 1)
    with pytest.raises(ValueError):
        predict("carrier-pigeon", rate=1, duration=1, interval=1)


async def test_open_loop_sender_keeps_its_schedule_behind_a_stall() -> None:
    """A slow send does not move later messages' intended times (no coordinated omission)."""
    now = [1000.0]
    texts: list[str] = []

    async def slow_send(text: str) -> None:
        texts.append(text)
        now[0] += 1.0  # every send "takes" one second: far slower than the schedule

    report = await send_open_loop(slow_send, t0=1000.0, rate=10, duration=0.5,
                                  clock=lambda: now[0])
    assert report.sent == message_count(10, 0.5) == 5
    assert [parse_stamp(t) for t in texts] == [(i, due_time(1000.0, i, 10)) for i in range(5)]
    assert report.max_lag_ms == pytest.approx(3600, rel=0.01)


async def test_sender_records_refused_sends_and_goes_on() -> None:
    """A send that raises is listed as failed; the rest still go."""
    async def flaky(text: str) -> None:
        if parse_stamp(text) == (1, due_time(0.0, 1, 1000)):
            raise ConnectionResetError("gone")

    report = await send_open_loop(flaky, t0=0.0, rate=1000, duration=0.003)
    assert (report.sent, report.failed) == (3, [1])
    assert "ConnectionResetError: gone" in next(iter(report.errors))


def test_option_parsing_refuses_unknown_modes_and_settings() -> None:
    """--modes and --set values are checked before anything starts."""
    assert parse_modes("poll, irc") == ("irc", "poll")
    assert parse_settings(("ping-interval=2", "motd=hi")) == {"ping_interval": 2.0,
                                                              "motd": "hi"}
    for bad in ("pigeon", ""):
        with pytest.raises(OptionError):
            parse_modes(bad)
    for pair in ("nope=1", "ping_interval", "ping_interval=soon", "irc_port=1",
                 "history=-1"):
        with pytest.raises(OptionError):
            parse_settings((pair,))


async def test_sender_lasts_the_whole_duration_after_its_last_message() -> None:
    """At 0.2 msg/s for 20 s the last of 4 messages is due at 15 s; the run still lasts 20 s."""
    now = [0.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:  # a clock that moves only when slept on
        slept.append(seconds)
        now[0] += seconds

    async def send(text: str) -> None:
        pass

    report = await send_open_loop(send, t0=0.0, rate=0.2, duration=20, clock=lambda: now[0],
                                  sleep=sleep)
    assert report.sent == 4
    assert now[0] == pytest.approx(20.0)
    assert slept == pytest.approx([5.0, 5.0, 5.0, 5.0])


def test_empty_polls_are_read_back_as_shares_of_polls() -> None:
    """The paragraph sets the measured empty share beside the model's share, both in %."""
    theory = predict("poll", rate=0.2, duration=20, interval=1, window=20.5).as_dict()
    fig = {"clients": 20, "requests": 410, "empty_polls": 320, "theory": theory,
           "requests_per_msg": 5.1, "bytes_in_per_msg": 100.0, "bytes_out_per_msg": 50.0,
           "connections": 20}
    sentences = " ".join(cost_sentences({"poll": fig}))
    assert theory["empty_polls"] == 16 and theory["requests"] == 20.5
    assert "320 of poll's 410 polls came back empty (78%; model 78%)" in sentences


def test_unknown_or_disabled_heartbeats_are_not_shown_as_zero_seconds() -> None:
    """A --server's unknown ping interval reads '?', a disabled one 'off'."""
    assert (pace(None), pace(0.0), pace(5.0)) == ("?", "off", "5 s")


def test_no_ping_in_the_window_is_said_in_words() -> None:
    """Zero PINGs in the keep-alive window: 'sent no PING', not '0 PINGs per minute'."""
    window = {"pings_per_min_per_irc_client": 0.0, "irc_connections": 4, "seconds": 6.0}
    text = dead_peer_paragraph({"probes": [], "server_window": window, "watched_s": 6.0,
                                "server": {"launched": False}})
    assert text == "The server sent no PING to its 4 IRC connections in the 6 s before the " \
                   "probes joined."


def test_a_flagged_udp_percentile_is_explained_under_its_table() -> None:
    """A recovered-latency percentile with too few samples gets its ``?`` and the note
    saying what ``?`` means (the delivery table's note shows only when that table has
    one)."""
    fig = {"udp": {"lost": 3, "reordered": 0, "recovered": 3, "late": 0,
                   "recovered_latency": {"count": 3, "p50_ms": 140.0, "p99_ms": 236.0},
                   "recovered_reliable": {"p50_ms": True, "p99_ms": False}},
           "link": {"datagrams": {"down": 100, "lost_down": 3}}}
    table = udp_table({"modes": {"udp": fig}})
    assert "too few samples" in str(table.caption)
    fig["udp"]["recovered_reliable"]["p99_ms"] = True
    assert "too few samples" not in str(udp_table({"modes": {"udp": fig}}).caption)
    fig["udp"]["recovered_latency"] = {"count": 0, "p50_ms": None, "p99_ms": None}
    fig["udp"]["recovered_reliable"] = {"p50_ms": False, "p99_ms": False}
    assert "too few samples" not in str(udp_table({"modes": {"udp": fig}}).caption)


def test_time_wait_is_told_on_each_side() -> None:
    """poll-close's sockets waiting on both sides: the sentence gives each side its own
    number, not the sum credited to one side."""
    link = {"connections": 182, "client_ports": 182, "port_budget_share": None,
            "time_wait": {"server_side": 142, "client_side": 39}}
    result = {"modes": {"poll-close": {"link": link, "connections_per_s": 9.9}},
              "port_budget": {"max_new_per_s": 470.5}}
    (sentence,) = socket_sentences(result)
    assert "142 on the server's side" in sentence and "39 on the clients'" in sentence
