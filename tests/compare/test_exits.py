"""How ``chat compare`` ends: exit statuses and one-line messages, never a traceback.

0: the figures are good; 1: a message was lost or refused; 2: the lab could not run or a
requested file could not be written; 130: interrupted with Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from chat.compare.procs import LabError, fetch_json, free_ports

from .helpers import run_compare


def unreachable_server() -> list[str]:
    """Options naming a server that is not there: any run would fail with its own error."""
    irc, http = free_ports(2)
    return ["--server", "127.0.0.1", "--irc-port", str(irc), "--http-port", str(http),
            "--clients", "1", "--duration", "1"]


def test_plot_without_matplotlib_is_refused_before_the_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No matplotlib: exit 2 at once, saying how to install it, brackets and all."""
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    png = tmp_path / "run.png"
    run = run_compare(tmp_path, *unreachable_server(), "--plot", str(png), files=False)
    assert run.exit_code == 2, run.output
    assert "--plot needs matplotlib" in run.text
    assert "[plot]" in run.text and "pip install" in run.text
    assert "cannot reach" not in run.output  # the run never started
    assert "Traceback" not in run.output and not png.exists()


@pytest.mark.parametrize("option", ["--json", "--csv", "--plot"])
def test_output_file_in_a_missing_directory_is_refused_before_the_run(
        tmp_path: Path, option: str) -> None:
    """A file that cannot be written is an error before the run, not a silent exit 0."""
    target = tmp_path / "no-such-dir" / "out"
    run = run_compare(tmp_path, *unreachable_server(), option, str(target), files=False)
    assert run.exit_code == 2, run.output
    assert f"{option} {target}" in run.output.replace("\n", "")  # a long path is folded
    assert "cannot reach" not in run.output and "Traceback" not in run.output


def test_plot_in_a_format_matplotlib_cannot_write_is_refused_before_the_run(
        tmp_path: Path) -> None:
    """--plot out.txt: exit 2 at once, naming the formats that work."""
    run = run_compare(tmp_path, *unreachable_server(), "--plot", str(tmp_path / "out.txt"),
                      files=False)
    assert run.exit_code == 2, run.output
    assert "'.txt'" in run.text and "png" in run.text
    assert "cannot reach" not in run.output and "Traceback" not in run.output


def test_a_lost_message_exits_1(tmp_path: Path) -> None:
    """Room history of 2 events, 6 messages between polls: pollers miss some, exit 1."""
    run = run_compare(tmp_path, "--modes", "poll", "--clients", "2", "--rate", "20",
                      "--duration", "0.5", "--interval", "0.3", "--set", "history=2")
    assert run.exit_code == 1, run.output
    result = run.json()
    poll = result["modes"]["poll"]
    assert poll["lost"] > 0 and poll["delivered"] + poll["lost"] == poll["expected"]
    assert result["sender"]["failed"] == 0  # every send was accepted: the loss is delivery's
    assert result["verdict"]["ok"] is False
    assert f"MESSAGES WERE LOST: poll missed {poll['lost']} of {poll['expected']}" in run.text


def server_http_port(lab: psutil.Process, within: float = 30.0) -> int:
    """The HTTP port of the ``chat serve`` the lab process started (read off its argv)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        for child in lab.children():
            with contextlib.suppress(psutil.Error):
                argv = child.cmdline()
                if "serve" in argv and "--http-port" in argv:
                    return int(argv[argv.index("--http-port") + 1])
        time.sleep(0.05)
    raise AssertionError("the lab started no server")


def wait_until_sending(http_port: int, within: float = 30.0) -> None:
    """Return once the server has accepted a lab message (the run is in its sending phase)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, LabError, ValueError):
            if fetch_json("127.0.0.1", http_port, "/api/stats")["irc"]["messages"] > 0:
                return
        time.sleep(0.05)
    raise AssertionError("the sender never sent")


def test_ctrl_c_mid_run_prints_one_line_and_exits_130() -> None:
    """Ctrl-C while sending: every lab process stops, one line is printed, exit 130."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "chat", "compare", "--modes", "irc,poll", "--clients", "2",
         "--duration", "60", "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)  # its own process group, as a shell gives a foreground job
    try:
        lab = psutil.Process(proc.pid)
        wait_until_sending(server_http_port(lab))
        children = lab.children(recursive=True)
        os.killpg(proc.pid, signal.SIGINT)  # a terminal's Ctrl-C reaches the whole group
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    text = (out + err).strip()
    assert proc.returncode == 130, text
    assert len(text.splitlines()) == 1 and "interrupted" in text, text
    assert not [c.pid for c in children if c.is_running()
                and c.status() != psutil.STATUS_ZOMBIE]
