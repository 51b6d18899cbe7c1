"""The lab through the link emulator: round trips, handshakes, sockets, the udp lane, NATs.

Each run goes through ``chat compare`` as a user would; the tests count and compare, they
do not hold figures to a clock (orderings such as "a request on a new connection takes
longer than on a kept one" are there to see at a 40 ms round trip, whatever the machine).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import PNG_MAGIC, Run, run_compare

RTT = "40ms"


@pytest.fixture(scope="module")
def rtt_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """Three clients of irc, poll, poll-close and udp, 2 s of sending at 2.5 msg/s then
    1.5 s of quiet, through a 40 ms round trip."""
    return run_compare(tmp_path_factory.mktemp("rtt"), "--modes", "irc,poll,poll-close,udp",
                       "--clients", "3", "--rate", "2.5", "--duration", "2",
                       "--quiet", "1.5", "--interval", "0.5", "--rtt", RTT)


def test_the_report_says_the_link_first(rtt_run: Run) -> None:
    """The link's settings are printed at the top and written to --json."""
    assert rtt_run.exit_code == 0, rtt_run.output
    assert "Link: rtt 40ms" in rtt_run.text
    assert rtt_run.text.index("Link:") < rtt_run.text.index("Delivery")
    link = rtt_run.json()["link"]
    assert link["direct"] is False and link["settings"]["rtt"] == pytest.approx(0.04)


def test_the_model_includes_the_round_trip(rtt_run: Run) -> None:
    """Push and poll models add half a round trip; a new connection per request pays two
    round trips a request, a kept one one."""
    modes = rtt_run.json()["modes"]
    assert modes["irc"]["theory"]["p50_ms"] == pytest.approx(20)
    assert modes["poll"]["theory"]["p50_ms"] == pytest.approx(250 + 20)
    assert modes["poll"]["theory"]["request_ms"] == pytest.approx(40)
    assert modes["poll-close"]["theory"]["request_ms"] == pytest.approx(80)
    assert modes["poll-close"]["request_ms"] > modes["poll"]["request_ms"]
    assert "half interval and half a round trip (270 ms)" in rtt_run.text


def test_every_poll_close_request_had_its_own_connection_port_and_handshake(
        rtt_run: Run) -> None:
    """poll-close: as many connections and handshakes as requests (plus the sign-in's and
    the final ones), nearly as many client ports (the kernel may hand a port out again
    once its connection is over on the client's side, the server keeping the TIME_WAIT);
    each left a TIME_WAIT somewhere.  "handshakes" counts the connections whose first bytes
    the link held for the handshake: a client that wrote later than one round trip after
    connecting (a stalled machine) waited for none, so it is at most the connections."""
    fig = rtt_run.json()["modes"]["poll-close"]
    link = fig["link"]
    assert link["connections"] // 2 < link["handshakes"] <= link["connections"]
    assert link["connections"] // 2 < link["client_ports"] <= link["connections"]
    assert link["connections"] >= fig["requests_lifetime"]
    assert link["fins_from_client"] == link["fins_from_server"] == link["connections"]
    waiting = link["time_wait"]
    assert waiting is not None
    assert 0 < waiting["server_side"] + waiting["client_side"] <= link["connections"]
    assert rtt_run.json()["modes"]["poll"]["link"]["connections"] == 3  # one each
    budget = rtt_run.json()["port_budget"]
    assert budget["max_new_per_s"] == pytest.approx(budget["ports"] / 60, abs=0.1)


def test_the_quiet_spell_makes_empty_polls(rtt_run: Run) -> None:
    """Nobody speaks for 1.5 s: polls come back empty, on both sides of the model."""
    fig = rtt_run.json()["modes"]["poll"]
    assert fig["empty_polls"] > 0 and fig["theory"]["empty_polls"] > 0


def test_bytes_split_into_headers_and_the_message(rtt_run: Run) -> None:
    """Per delivered message: the text's bytes (the lab's stamp) and everything else."""
    for mode, fig in rtt_run.json()["modes"].items():
        assert 20 < fig["payload_bytes_per_msg"] < 40, mode
        assert fig["header_bytes_per_msg"] > 0, mode


def test_too_few_samples_are_flagged(rtt_run: Run) -> None:
    """15 deliveries per mode pin down no p99: flagged in --json and in the table."""
    fig = rtt_run.json()["modes"]["irc"]
    assert fig["latency"]["count"] == 15
    assert fig["reliable"] == {"p50_ms": False, "p90_ms": False, "p99_ms": False,
                               "max_ms": False}
    assert "?" in rtt_run.output and "too few samples" in rtt_run.text


def test_plot_has_the_sockets_panel(rtt_run: Run) -> None:
    """The PNG is written (four panels: CDF with the model, bytes, bars, sockets)."""
    assert rtt_run.png()[:8] == PNG_MAGIC


def test_udp_losses_by_number_are_recovered(tmp_path: Path) -> None:
    """Datagrams 3 and 5 to the one udp client dropped (1: the registration's answer, 2:
    the sender's join): two messages lost on the way, fetched over HTTP, none missing."""
    run = run_compare(tmp_path, "--modes", "udp", "--clients", "1", "--rate", "4",
                      "--duration", "1.5", "--quiet", "0.5", "--interval", "30",
                      "--drop", "3,5")
    assert run.exit_code == 0, run.output
    fig = run.json()["modes"]["udp"]
    assert fig["delivered"] == fig["expected"] == 6
    assert (fig["udp"]["lost"], fig["udp"]["recovered"]) == (2, 2)
    assert fig["udp"]["recovered_latency"]["count"] == 2
    assert fig["link"]["datagrams"]["lost_down"] == 2
    assert "fetched over HTTP" in run.text


def test_direct_leaves_the_link_out(tmp_path: Path) -> None:
    """--direct: no relay, no per-mode socket figures; emulation options are refused."""
    run = run_compare(tmp_path, "--modes", "irc", "--clients", "1", "--duration", "0.5",
                      "--quiet", "0", "--direct", files=False)
    assert run.exit_code == 0, run.output
    assert "Link: none (--direct)" in run.text and "Connections and sockets" not in run.text
    refused = run_compare(tmp_path, "--direct", "--rtt", "10ms", files=False)
    assert refused.exit_code == 2 and "--direct" in refused.text


@pytest.fixture(scope="module")
def nat_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The nat scenario with one-second timeouts, two clients of irc, poll and udp."""
    return run_compare(tmp_path_factory.mktemp("nat"), "--scenario", "nat",
                       "--modes", "irc,poll,udp", "--clients", "2", "--interval", "0.2",
                       "--nat-timeout", "1", "--proxy-timeout", "1")


def test_nat_rounds_lose_nothing_in_the_end(nat_run: Run) -> None:
    """Four rounds; every message reached every client, late or not; files written."""
    assert nat_run.exit_code == 0, nat_run.output
    result = nat_run.json()
    assert [(r["kind"], r["pace"]) for r in result["rounds"]] == [
        ("nat", "slow"), ("nat", "fast"), ("proxy", "slow"), ("proxy", "fast")]
    assert all(row["lost"] == 0 for row in result["rows"])
    assert len(nat_run.csv()) == len(result["rows"]) == 12
    assert nat_run.png()[:8] == PNG_MAGIC


def test_a_black_hole_is_noticed_late_and_a_cut_at_once(nat_run: Run) -> None:
    """Slow heartbeats: the NAT breaks the irc connection silently (both sides notice
    later, and reconnects); the proxy's cut is noticed at once.  Polls, every 0.2 s, are
    never hit.  (Whether a message falls into the outage depends on the phases: not
    asserted.)"""
    rounds = {(r["kind"], r["pace"]): {row["mode"]: row for row in r["modes"]}
              for r in nat_run.json()["rounds"]}
    irc = rounds[("nat", "slow")]["irc"]
    assert irc["flows_hit"] >= 1 and irc["reconnects"] >= 1
    assert irc["server_noticed_s"] > 0 and irc["client_noticed_s"] > 0
    cut = rounds[("proxy", "slow")]["irc"]
    assert cut["flows_hit"] >= 1 and cut["server_noticed_s"] == cut["client_noticed_s"] == 0
    for key in rounds:
        assert rounds[key]["poll"]["flows_hit"] == 0


def test_every_idle_client_is_hit_not_only_the_first(nat_run: Run) -> None:
    """Slow heartbeats: both irc clients lose their connection to the NAT and to the proxy
    (each client sits in a room of its own: one's reconnect, a QUIT and a JOIN in a shared
    room, would be traffic that keeps the other's idle flow alive)."""
    for kind in ("nat", "proxy"):
        irc = next(row for r in nat_run.json()["rounds"] if (r["kind"], r["pace"]) ==
                   (kind, "slow") for row in r["modes"] if row["mode"] == "irc")
        assert irc["clients_reconnected"] == irc["clients"] == 2


def test_heartbeats_under_the_timeout_keep_the_flows(nat_run: Run) -> None:
    """Fast heartbeats: the irc connection and the udp mapping survive, nothing is late."""
    for kind in ("nat", "proxy"):
        rows = {row["mode"]: row for row in
                next(r for r in nat_run.json()["rounds"]
                     if (r["kind"], r["pace"]) == (kind, "fast"))["modes"]}
        assert rows["irc"]["flows_hit"] == 0 and rows["irc"]["missed_live"] == 0
        assert rows["udp"]["missed_live"] == 0


def test_a_server_with_a_password_is_measured_too(tmp_path: Path) -> None:
    """``--set password=...``: every lab client (IRC PASS, the HTTP sign-in's password, the
    udp lane's session) signs in with it, and every message arrives."""
    run = run_compare(tmp_path, "--set", "password=sekrit", "--modes", "irc,poll,udp",
                      "--clients", "2", "--rate", "4", "--duration", "1", "--quiet", "0",
                      "--interval", "0.3", "--rtt", "10ms", files=False)
    assert run.exit_code == 0, run.output
    assert "All 6 clients received all" in run.text
