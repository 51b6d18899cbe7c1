"""The ``chat`` command: ``serve``, ``connect`` and ``compare``.  Options only, no logic.

``serve``'s options are generated from :class:`chat.config.Config`, so every limit shows in
``--help`` with its default and reads ``CHAT_<NAME>`` from the environment.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import sys
from collections.abc import Callable
from typing import Any

import click

from .config import Config, config_fields

LOG_LEVELS = ("debug", "info", "warning", "error")


def _config_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate ``func`` with one click option per Config field."""
    for f in reversed(config_fields()):
        name = f.name.replace("_", "-")
        kind: Any
        if f.name == "log_level":
            kind = click.Choice(LOG_LEVELS, case_sensitive=False)
        elif f.type in ("int", int):
            kind = click.IntRange(min=0)
        elif f.type in ("float", float):
            kind = click.FloatRange(min=0)
        else:
            kind = str
        func = click.option(
            f"--{name}", f.name, type=kind, default=f.default, show_default=True,
            envvar=f"CHAT_{f.name.upper()}", show_envvar=True, help=f.metadata["help"],
        )(func)
    return func


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level.upper()), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="chatlab")
def main() -> None:
    """ChatLab: an IRC + HTTP polling chat server, a client, and a push-vs-poll lab."""


@main.command()
@_config_options
def serve(**options: Any) -> None:
    """Run the chat server: IRC on --irc-port, the HTTP API on --http-port."""
    from .app import ChatServer, new_event_loop, raise_fd_limit

    known = {f.name for f in dataclasses.fields(Config)}
    config = Config(**{k: v for k, v in options.items() if k in known})
    _setup_logging(config.log_level)
    raise_fd_limit()
    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        server = ChatServer(config)
        loop.run_until_complete(server.serve_until_signal())
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on {config.host}: {exc.strerror or exc}") from None
    except KeyboardInterrupt:
        pass
    finally:
        loop.close()
