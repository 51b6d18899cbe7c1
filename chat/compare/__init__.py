"""``chat compare``: the push-versus-poll lab.  Load, measure, report.

Modules: :mod:`.options` (what the command parses), :mod:`.procs` (the server under test and
the worker processes), :mod:`.worker` (one mode's clients, or the sender), :mod:`.sender`
(the open-loop schedule), :mod:`.metrics` and :mod:`.theory` (pure figures), :mod:`.runner`
(the throughput run), :mod:`.deadpeer` and :mod:`.idle` (the heartbeat scenarios),
:mod:`.report` and :mod:`.plot` (output).
"""

from __future__ import annotations

import asyncio
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

SCENARIO_SETTINGS = {"throughput": RUN_SETTINGS, "dead-peer": DEAD_PEER_SETTINGS,
                     "idle": IDLE_SETTINGS}


async def run_lab(opts: LabOptions, console: Console | None = None) -> dict[str, Any]:
    """Run ``opts.scenario`` against a launched (or the given) server; the result document."""
    from .deadpeer import run_dead_peer
    from .idle import run_idle
    from .runner import run_throughput

    console = console or Console(stderr=True, quiet=not opts.progress)
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


def save(result: dict[str, Any], opts: LabOptions, console: Console) -> None:
    """Write --json, --csv and --plot files."""
    from .report import write_csv, write_json

    if opts.json_path:
        write_json(result, opts.json_path)
        console.print(f"wrote {opts.json_path}")
    if opts.csv_path:
        write_csv(result, opts.csv_path)
        console.print(f"wrote {opts.csv_path}")
    if opts.plot_path:
        from .plot import PlotUnavailable, write_plot
        try:
            write_plot(result, opts.plot_path)
            console.print(f"wrote {opts.plot_path}")
        except PlotUnavailable as exc:
            console.print(f"[yellow]{exc}[/]")


def show(result: dict[str, Any], console: Console) -> None:
    from .deadpeer import show_dead_peer
    from .idle import show_idle
    from .report import show as show_throughput

    {"dead-peer": show_dead_peer, "idle": show_idle}.get(result["scenario"],
                                                         show_throughput)(result, console)


def run(opts: LabOptions, console: Console | None = None) -> int:
    """The whole command: run, print, save.  Exit status 0 ok, 1 figures failed, 2 error."""
    console = console or Console()
    try:
        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            result = runner.run(run_lab(opts, console))
    except LabError as exc:
        console.print(f"[bold red]chat compare: {exc}[/]")
        return 2
    show(result, console)
    save(result, opts, console)
    return 0 if result["verdict"]["ok"] else 1
