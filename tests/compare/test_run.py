"""A short throughput run of every mode through ``chat compare``: the invariants hold.

One run (a few seconds, three clients per mode) is shared by the tests of this module; each
test checks one rule on its figures.  The sender publishes every 0.4 s and pollers ask every
0.3 s, so some polls must come back empty and poll latency is spread over the interval.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from chat.cli import main
from chat.client.transports import MODES
from chat.compare.report import CSV_COLUMNS

from .helpers import words

RATE, DURATION, INTERVAL, CLIENTS = 2.5, 2.4, 0.3, 3


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run ``chat compare`` once with --json, --csv and --plot; its output and files."""
    out = tmp_path_factory.mktemp("compare")
    paths = {name: out / f"run.{name}" for name in ("json", "csv", "png")}
    result = CliRunner().invoke(main, [
        "compare", "--clients", str(CLIENTS), "--rate", str(RATE), "--duration", str(DURATION),
        "--interval", str(INTERVAL), "--no-progress", "--json", str(paths["json"]),
        "--csv", str(paths["csv"]), "--plot", str(paths["png"])], terminal_width=120)
    assert result.exit_code == 0, result.output
    return {"output": result.output, "paths": paths,
            "json": orjson.loads(paths["json"].read_bytes())}


def test_nothing_lost_duplicated_or_reordered(run: dict[str, Any]) -> None:
    """Every client of every mode got every message once, in order."""
    modes = run["json"]["modes"]
    assert list(modes) == list(MODES)
    sent = run["json"]["sender"]["sent"]
    assert sent == round(RATE * DURATION) and run["json"]["sender"]["failed"] == 0
    for mode, fig in modes.items():
        assert fig["clients"] == CLIENTS, mode
        assert fig["delivered"] == fig["expected"] == sent * CLIENTS, mode
        assert (fig["lost"], fig["duplicates"], fig["out_of_order"]) == (0, 0, 0), mode
    assert run["json"]["verdict"]["ok"] is True


def test_push_is_faster_than_polling(run: dict[str, Any]) -> None:
    """The slowest push median is below the fastest poll median."""
    modes = run["json"]["modes"]
    push = max(modes[m]["latency"]["p50_ms"] for m in ("irc", "ws", "sse", "longpoll"))
    poll = min(modes[m]["latency"]["p50_ms"] for m in ("poll", "poll-close"))
    assert push < poll


def test_poll_close_opens_one_connection_per_request(run: dict[str, Any]) -> None:
    """poll-close: handshakes == requests; poll reuses one keep-alive connection."""
    modes = run["json"]["modes"]
    pc = modes["poll-close"]
    assert pc["requests"] > 0
    assert pc["connections"] == pc["requests"]
    assert pc["connections_lifetime"] == pc["requests_lifetime"]
    assert modes["poll"]["connections"] == 0 and modes["poll"]["requests"] > 0
    assert modes["irc"]["connections_per_client"] == 1
    assert modes["ws"]["connections_per_client"] == 2  # the sign-in, then the WebSocket
    assert modes["ws"]["requests"] == 0


def test_empty_polls_are_counted_on_both_sides(run: dict[str, Any]) -> None:
    """Polls with nothing new are counted by the clients and by the server's /api/stats."""
    modes = run["json"]["modes"]
    client_empty = modes["poll"]["empty_polls"] + modes["poll-close"]["empty_polls"]
    assert client_empty > 0
    server = run["json"]["phases"][0]["stats_delta"]["http"]
    assert server["empty_polls"] >= client_empty
    assert server["requests"] >= modes["poll"]["requests"] + modes["poll-close"]["requests"]


def test_every_figure_has_its_model_figure(run: dict[str, Any]) -> None:
    """JSON: latency percentiles, costs and the model's prediction for every mode."""
    for mode, fig in run["json"]["modes"].items():
        for key in ("p50_ms", "p90_ms", "p99_ms", "max_ms"):
            assert fig["latency"][key] is not None, (mode, key)
            assert fig["theory"][key] is not None, (mode, key)
        for key in ("requests", "empty_polls", "connections"):
            assert fig["theory"][key] is not None, (mode, key)
        assert fig["cdf"] and fig["bytes_in_per_msg"] > 0 and fig["client_cpu_s"] is not None
    phase = run["json"]["phases"][0]
    assert phase["cpu_s"] is not None and phase["stats_delta"]["irc"]["messages"] > 0


def test_csv_has_one_complete_row_per_mode(run: dict[str, Any]) -> None:
    """CSV: the header is CSV_COLUMNS and no cell is empty."""
    with Path(run["paths"]["csv"]).open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["mode"] for r in rows] == list(MODES)
    for row in rows:
        assert list(row) == list(CSV_COLUMNS)
        assert all(value != "" for value in row.values()), row


def test_table_paragraph_and_plot(run: dict[str, Any]) -> None:
    """The table names every mode, the paragraph reads the loss verdict, the PNG exists."""
    output = words(run["output"])  # rich wraps the paragraph at the terminal's width
    for mode in MODES:
        assert mode in output
    assert "received all" in output and "one handshake each" in output
    assert Path(run["paths"]["png"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_server_settings_unlike_chat_serve_are_printed_first(run: dict[str, Any]) -> None:
    """The report opens with the settings of the lab's server that differ from the defaults."""
    output = words(run["output"])
    for setting in ("flood_burst=0 (default 10)", "http_rate=0 (default 50)"):
        assert setting in output
        assert output.index(setting) < output.index("Delivery")
    assert "irc_port" not in output  # the lab picks its ports: no news to the reader
    assert run["json"]["server"]["differs_from_defaults"]["flood_burst"] == [0, 10]
