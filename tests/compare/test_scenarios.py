"""The heartbeat scenarios and a run against a server the lab did not start.

Each scenario runs once per module through ``chat compare`` (with --json, --csv and --plot)
and the tests check one rule each on what it printed and wrote.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from chat.cli import main
from chat.compare import LabOptions, run_lab
from chat.compare.options import RUN_SETTINGS
from chat.compare.procs import ServerTarget

from .helpers import PNG_MAGIC, Run, run_compare

SLACK = 1.25  # the server sweeps its deadlines: up to a quarter late, plus half a second
FAST_BEATS = ("--set", "ping_interval=0.5", "--set", "ping_timeout=0.5",
              "--set", "session_timeout=1.0", "--set", "sse_heartbeat=0.5",
              "--set", "udp_timeout=0.5")


@pytest.fixture(scope="module")
def dead_peer(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """Dead peers watched while one live client of irc, longpoll and poll idles."""
    return run_compare(tmp_path_factory.mktemp("dead"), "--scenario", "dead-peer",
                       "--clients", "1", "--modes", "irc,ws,longpoll,poll", "--interval", "0.3",
                       *FAST_BEATS)


@pytest.fixture(scope="module")
def dead_peer_no_irc(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """Dead peers with only long pollers alive: no live IRC client at all."""
    return run_compare(tmp_path_factory.mktemp("dead-lp"), "--scenario", "dead-peer",
                       "--clients", "2", "--modes", "longpoll", *FAST_BEATS)


@pytest.fixture(scope="module")
def idle(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """Three idle clients of irc, ws, sse and poll for 1.5 s with fast heartbeats."""
    return run_compare(tmp_path_factory.mktemp("idle"), "--scenario", "idle",
                       "--clients", "3", "--duration", "1.5", "--modes", "irc,ws,sse,poll",
                       "--set", "ping_interval=0.4", "--set", "ping_timeout=1.0",
                       "--set", "sse_heartbeat=0.4")


def test_dead_peer_noticed_within_the_configured_bound(dead_peer: Run) -> None:
    """A silent IRC client is reaped after ping interval + timeout, a mute poller at expiry."""
    assert dead_peer.exit_code == 0, dead_peer.output
    result = dead_peer.json()
    probes = {p["mode"]: p for p in result["probes"]}
    assert set(probes) == {"irc", "ws", "sse", "poll", "udp"}
    assert probes["irc"]["bound_s"] == probes["ws"]["bound_s"] == 1.0
    assert probes["poll"]["bound_s"] == 1.0 and probes["udp"]["bound_s"] == 1.0
    for mode in ("irc", "ws", "poll", "udp"):
        probe = probes[mode]
        assert probe["noticed"], probe
        assert 0 < probe["noticed_after_s"] <= probe["bound_s"] * SLACK + 0.5, probe
        assert probe["within_bound"] is True
    assert "ping_interval=0.5 (default 25)" in dead_peer.text
    assert "Ping timeout" in probes["irc"]["reason"]
    assert probes["ws"]["reason"] == "Ping timeout"
    assert probes["udp"]["reason"] == "Session timeout"  # its registration ended first
    assert "timeout" in probes["poll"]["reason"].lower()
    costs = {c["mode"]: c for c in result["keepalive"]}
    assert costs["poll"]["requests_per_min"] > 0 and costs["irc"]["bytes_in_per_min"] > 0
    assert result["server_window"]["pings_sent"] > 0


def test_keepalive_is_measured_without_the_probes(dead_peer: Run) -> None:
    """The keep-alive window holds no probe: no connection, session or chat event in it."""
    result = dead_peer.json()
    window = result["server_window"]
    assert window["stats_delta"]["irc"]["connections_accepted"] == 0
    assert window["stats_delta"]["http"]["sessions_created"] == 0
    assert all(c["events"] == 0 for c in result["keepalive"]), result["keepalive"]
    # At most one PING per ping interval (0.5 s) per IRC connection: the live one and the
    # observer.  Counting a probe's PINGs, or dividing by absent clients, breaks this.
    seconds = window["minutes"] * 60
    assert window["irc_connections"] == 2
    assert 0 < window["pings_sent"] <= 2 * (seconds / 0.5 + 1)


def test_long_polls_beat_as_in_the_idle_scenario(dead_peer: Run) -> None:
    """Live long polls wait one ping interval, so the window shows their beats too."""
    costs = {c["mode"]: c for c in dead_peer.json()["keepalive"]}
    assert costs["longpoll"]["heartbeat_s"] == 0.5
    assert costs["longpoll"]["requests_per_min"] > 0
    assert costs["longpoll"]["requests_per_min"] <= costs["poll"]["requests_per_min"]


def test_no_ping_figure_without_live_irc_clients(dead_peer_no_irc: Run) -> None:
    """With only long pollers alive, the lab reports no PINGs per IRC client."""
    assert dead_peer_no_irc.exit_code == 0, dead_peer_no_irc.output
    result = dead_peer_no_irc.json()
    assert result["server_window"]["pings_per_min_per_irc_client"] is None
    assert "PING" not in dead_peer_no_irc.text
    assert [c["mode"] for c in result["keepalive"]] == ["longpoll"]


def test_keepalive_window_is_five_beats_or_the_duration_for_an_unknown_server() -> None:
    """Five beats of the slowest live mode; --duration when the server's beats are unknown."""
    from chat.compare.deadpeer import keepalive_seconds
    from chat.config import Config

    opts = LabOptions(scenario="dead-peer", duration=7.0, interval=1.0)
    config = Config(ping_interval=0.5, sse_heartbeat=2.0)
    assert keepalive_seconds(opts, config, ("irc", "longpoll", "poll")) == 5.0
    assert keepalive_seconds(opts, config, ("sse", "irc")) == 10.0
    assert keepalive_seconds(opts, None, ("longpoll", "irc")) == 7.0


@pytest.mark.parametrize("scenario", ["dead_peer", "idle"])
def test_every_output_file_is_written_in_every_scenario(
        scenario: str, request: pytest.FixtureRequest) -> None:
    """--json, --csv and --plot work outside the throughput scenario: a row per table line."""
    run: Run = request.getfixturevalue(scenario)
    assert run.exit_code == 0, run.output
    assert "Traceback" not in run.output
    result, rows = run.json(), run.csv()
    assert len(rows) == len(result["rows"]) > 0
    assert {r["kind"] for r in rows} == {r["kind"] for r in result["rows"]}
    assert all(any(v != "" for k, v in r.items() if k != "kind") for r in rows)
    assert run.png()[:8] == PNG_MAGIC


def test_idle_reports_memory_and_heartbeats_per_mode(idle: Run) -> None:
    """Idle clients: server memory per client, PINGs and SSE heartbeats over time."""
    result = idle.json()
    modes = {c["mode"]: c for c in result["modes"]}
    assert set(modes) == {"irc", "ws", "sse", "poll"}
    assert all(c["clients"] == 3 for c in modes.values())
    assert all(step["rss_after"] for step in result["ramp"])
    assert modes["sse"]["bytes_in_per_min"] > 0      # heartbeat comments, nothing else
    assert modes["poll"]["requests_per_min"] > 0
    assert result["timeline"] and result["timeline"][-1]["irc_pings_sent"] > 0
    assert result["timeline"][-1]["ws_pings_sent"] > 0
    assert modes["ws"]["heartbeat_s"] == 0.4 and modes["ws"]["bytes_in_per_min"] > 0
    assert result["verdict"]["ok"]


async def test_run_against_a_given_server_uses_http_sender_and_its_stats() -> None:
    """--server: the lab starts nothing, sends over HTTP and still reads /api/stats deltas."""
    target = await ServerTarget.launch(dict(RUN_SETTINGS))
    try:
        opts = LabOptions(clients=2, rate=4, duration=1.0, modes=("irc", "poll"),
                          interval=0.3, server=target.host, irc_port=target.irc_port,
                          http_port=target.http_port, progress=False)
        result = await run_lab(opts)
    finally:
        await target.close()
    assert result["server"]["launched"] is False
    assert result["server"]["differs_from_defaults"] is None  # its settings are unknown
    assert result["options"]["sender"] == "poll"
    assert result["verdict"]["ok"] and result["verdict"]["lost"] == 0
    assert result["phases"][0]["stats_delta"]["http"]["messages"] == 4


@pytest.mark.parametrize("args, message", [
    (["--modes", "irc,pigeon"], "unknown mode pigeon"),
    (["--set", "nosuch=1"], "NAME=VALUE"),
    (["--server", "127.0.0.1", "--set", "ping_interval=1"], "not with --server"),
    (["--rate", "0"], "--rate"),
])
def test_bad_options_are_usage_errors(args: list[str], message: str) -> None:
    """Bad options stop with a usage message before anything starts."""
    result = CliRunner().invoke(main, ["compare", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_unreachable_server_is_a_one_line_error(tmp_path: Path) -> None:
    """A --server that does not answer ends with exit 2 and a message, not a traceback."""
    from chat.compare.procs import free_ports
    irc, http = free_ports(2)
    run = run_compare(tmp_path, "--server", "127.0.0.1", "--irc-port", str(irc),
                      "--http-port", str(http), "--clients", "1", "--duration", "1",
                      files=False)
    assert run.exit_code == 2, run.output
    assert "chat compare:" in run.output and "Traceback" not in run.output
