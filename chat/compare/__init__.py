"""``chat compare``: the push-versus-poll lab.  Load, measure, report.

Modules: :mod:`.options` (what the command parses), :mod:`.procs` (the server under test and
the worker processes), :mod:`.worker` (one mode's clients, or the sender), :mod:`.sender`
(the open-loop schedule), :mod:`.metrics` and :mod:`.theory` (pure figures), :mod:`.runner`
(the throughput run), :mod:`.deadpeer` and :mod:`.idle` (the heartbeat scenarios),
:mod:`.report` and :mod:`.plot` (output).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from rich.console import Console

from ..runtime import new_event_loop
from .options import (
    DEAD_PEER_SETTINGS,
    IDLE_SETTINGS,
    RUN_SETTINGS,
    LabOptions,
)
from .procs import LabError, ServerTarget

__all__ = ["LabError", "LabOptions", "run", "run_lab"]

EXIT_OK = 0           # every message delivered (heartbeat scenarios: every bound held)
EXIT_FAILED = 1       # a message was lost or refused, or a bound was missed
EXIT_ERROR = 2        # the lab could not run, or a requested file was not written
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, as shells report it)

SCENARIO_SETTINGS = {"throughput": RUN_SETTINGS, "dead-peer": DEAD_PEER_SETTINGS,
                     "idle": IDLE_SETTINGS, "nat": RUN_SETTINGS}


async def run_lab(opts: LabOptions, console: Console | None = None) -> dict[str, Any]:
    """Run ``opts.scenario`` against a launched (or the given) server; the result document."""
    from .deadpeer import run_dead_peer
    from .idle import run_idle
    from .nat import run_nat
    from .runner import run_throughput

    console = console or Console(stderr=True, quiet=not opts.progress)
    if opts.scenario == "nat":  # a server per round, each with its own heartbeats
        return await run_nat(opts, console)
    if opts.server is None:
        settings = opts.server_settings(SCENARIO_SETTINGS[opts.scenario])
        target = await ServerTarget.launch(settings)
    else:
        target = ServerTarget.attach(opts.server, opts.irc_port, opts.http_port)
    try:
        if opts.scenario == "dead-peer":
            return await run_dead_peer(opts, target, console)
        if opts.scenario == "idle":
            return await run_idle(opts, target, console)
        return await run_throughput(opts, target, console)
    finally:
        await target.close()


def outputs(opts: LabOptions) -> list[tuple[str, str]]:
    """The files asked for, as ``(option, path)`` pairs."""
    asked = (("--json", opts.json_path), ("--csv", opts.csv_path), ("--plot", opts.plot_path))
    return [(option, path) for option, path in asked if path]


def preflight(opts: LabOptions) -> None:
    """Refuse, before anything starts, files that could not be written after the run."""
    for option, path in outputs(opts):
        folder = Path(path).parent
        if not folder.is_dir():
            raise LabError(f"{option} {path}: there is no directory {folder}")
        if not os.access(folder, os.W_OK):
            raise LabError(f"{option} {path}: cannot write in {folder}")
    if opts.plot_path:
        from .plot import PlotUnavailable, check_available, check_format
        try:
            check_available()
            check_format(opts.plot_path)
        except PlotUnavailable as exc:
            raise LabError(str(exc)) from None


def save(result: dict[str, Any], opts: LabOptions, console: Console) -> bool:
    """Write the --json, --csv and --plot files; False if any could not be written."""
    from .plot import PlotUnavailable, write_plot
    from .report import write_csv, write_json

    writers = {"--json": write_json, "--csv": write_csv, "--plot": write_plot}
    written = True
    for option, path in outputs(opts):
        try:
            writers[option](result, path)
        except (OSError, PlotUnavailable) as exc:
            fail(f"{option} {path}: not written: {exc}")
            written = False
        else:
            console.print(f"wrote {path}", markup=False, highlight=False)
    return written


def show(result: dict[str, Any], console: Console) -> None:
    """Print the scenario's tables and paragraph."""
    from .deadpeer import show_dead_peer
    from .idle import show_idle
    from .nat import show_nat
    from .report import server_line, show_link
    from .report import show as show_throughput

    if result["scenario"] == "nat":
        console.print("Servers: one started by the lab for each round, with that round's "
                      "heartbeats (flood control and request budgets off).", markup=False,
                      highlight=False)
    else:
        console.print(server_line(result["server"]), markup=False, highlight=False)
    if result["scenario"] in ("throughput", "nat"):
        show_link(result, console)
    {"dead-peer": show_dead_peer, "idle": show_idle, "nat": show_nat}.get(
        result["scenario"], show_throughput)(result, console)


def fail(message: str) -> None:
    """One line on stderr, taken literally (no rich markup: paths and hints have brackets)."""
    Console(stderr=True).print(f"chat compare: {message}", style="bold red", markup=False,
                               highlight=False)


def run(opts: LabOptions, console: Console | None = None) -> int:
    """The whole command: check, run, print, save; the exit status (see EXIT_*)."""
    console = console or Console()
    try:
        preflight(opts)
        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            result = runner.run(run_lab(opts, console))
        show(result, console)
        written = save(result, opts, console)
    except LabError as exc:
        fail(str(exc))
        return EXIT_ERROR
    except KeyboardInterrupt:
        # asyncio.Runner cancelled the run, whose cleanup stopped the workers and server.
        fail("interrupted; the lab's server and workers are stopped")
        return EXIT_INTERRUPTED
    if not written:
        return EXIT_ERROR
    return EXIT_OK if result["verdict"]["ok"] else EXIT_FAILED
