"""The ``chat`` command: ``serve``, ``connect``, ``compare`` and ``link``.  Options only.

``serve``'s options are generated from :class:`chat.config.Config`, so every limit shows in
``--help`` with its default and reads ``CHAT_<NAME>`` from the environment.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from typing import Any

import click

from .client.model import MODES
from .config import MINIMUMS, Config, config_fields

LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")
CLOAK_MODES = ("auto", "all", "off")


def _config_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate ``func`` with one click option per Config field."""
    for f in reversed(config_fields()):
        name = f.name.replace("_", "-")
        common: dict[str, Any] = {"show_default": True, "envvar": f"CHAT_{f.name.upper()}",
                                  "show_envvar": True, "help": f.metadata["help"]}
        if f.type in ("bool", bool):
            func = click.option(f"--{name}/--no-{name}", f.name, default=f.default,
                                **common)(func)
            continue
        if f.type.startswith("tuple"):  # repeatable; from the environment: space-separated
            func = click.option(f"--{name}", f.name, multiple=True, default=f.default,
                                **common)(func)
            continue
        kind: Any
        if str(f.type).startswith("tuple"):  # repeatable: --oper A:x --oper B:y
            func = click.option(
                f"--{name}", f.name, multiple=True, default=(), envvar=f"CHAT_{f.name.upper()}",
                show_envvar=True, help=f.metadata["help"] + " [env: space-separated]",
            )(func)
            continue
        if f.name == "log_level":
            kind = click.Choice(LOG_LEVELS, case_sensitive=False)
        elif f.name == "cloak":
            kind = click.Choice(CLOAK_MODES, case_sensitive=False)
        elif f.name == "log_format":
            kind = click.Choice(LOG_FORMATS, case_sensitive=False)
        elif f.name.endswith("_port"):
            kind = click.IntRange(0, 65535)
        elif f.type in ("int", int):
            kind = click.IntRange(min=int(MINIMUMS.get(f.name, 0)))
        elif f.type in ("float", float):
            kind = click.FloatRange(min=MINIMUMS.get(f.name, 0))
        else:
            kind = str
        func = click.option(f"--{name}", f.name, type=kind, default=f.default, **common)(func)
    return func


def _parsed(parse: Callable[[str], Any]) -> Callable[[Any, Any, Any], Any]:
    """A click callback that turns ``50ms``/``10mbit``/``1%`` into a number (None stays)."""
    def callback(ctx: Any, param: Any, value: Any) -> Any:
        if value is None:
            return None
        try:
            return parse(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
    return callback


def link_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The emulated path's options, shared by ``chat link`` and ``chat compare``."""
    from .link.units import parse_duration, parse_indices, parse_rate, parse_share

    options = [
        click.option("--rtt", callback=_parsed(parse_duration), metavar="TIME",
                     help="Round-trip time to emulate (e.g. 50ms): each way takes half; a "
                          "new connection's first bytes wait one RTT (the handshake)."),
        click.option("--jitter", callback=_parsed(parse_duration), metavar="TIME",
                     help="Each one-way delay varies by up to this much, up or down."),
        click.option("--bandwidth", callback=_parsed(parse_rate), metavar="RATE",
                     help="Cap each direction at this rate (e.g. 10mbit, 2MB)."),
        click.option("--nat-timeout", callback=_parsed(parse_duration), metavar="TIME",
                     help="A NAT forgets a flow idle this long: later bytes vanish both "
                          "ways, no FIN, no RST (a half-open connection)."),
        click.option("--proxy-timeout", callback=_parsed(parse_duration), metavar="TIME",
                     help="A proxy closes both sides of a flow idle this long."),
        click.option("--loss", callback=_parsed(parse_share), metavar="SHARE",
                     help="Share of segments lost (e.g. 1%): TCP sends them again after a "
                          "timeout (late, in order); datagrams are gone."),
        click.option("--drop", callback=_parsed(parse_indices), metavar="LIST",
                     help="Datagrams to the client to drop by number, e.g. 3,7,10-12 "
                          "(deterministic loss, for tests)."),
        click.option("--seed", type=int, default=None,
                     help="Random seed for jitter and loss (repeatable runs)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def link_settings(options: dict[str, Any]) -> Any:
    """Pop the link options out of ``options``: a LinkSettings."""
    from .link.model import LinkSettings

    values = {name: options.pop(name) for name in ("rtt", "jitter", "bandwidth",
                                                    "nat_timeout", "proxy_timeout", "loss",
                                                    "drop", "seed")}
    return LinkSettings(**{k: v for k, v in values.items() if v is not None})


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="chatlab")
def main() -> None:
    """ChatLab: an IRC + HTTP polling chat server, a client, and a push-vs-poll lab."""


@main.command()
@_config_options
def serve(**options: Any) -> None:
    """Run the chat server: IRC on --irc-port, the HTTP API on --http-port."""
    from .engine import open_engine
    from .logs import setup_logging
    from .runtime import raise_fd_limit
    from .workers import run_server, run_workers

    known = {f.name for f in dataclasses.fields(Config)}
    try:
        config = Config(**{k: v for k, v in options.items() if k in known})
    except ValueError as exc:  # a malformed --oper, --server-name, --network, --cors-origin
        raise click.UsageError(str(exc)) from None
    try:
        open_engine(config, 0)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--engine") from None
    from .state import parse_networks

    try:
        parse_networks(config.per_ip_exempt)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--per-ip-exempt") from None
    if config.tls_key and not config.tls_cert:
        raise click.UsageError("--tls-key needs --tls-cert")
    if config.tls_cert:
        from .tls import server_context

        try:
            server_context(config.tls_cert, config.tls_key)
        except OSError as exc:  # ssl.SSLError is one
            raise click.BadParameter(f"cannot load the certificate: {exc}",
                                     param_hint="--tls-cert/--tls-key") from None
    if config.workers > 1 and config.engine == "memory":
        raise click.UsageError("--workers > 1 needs a shared engine (--engine "
                               "redis://HOST:PORT/DB): with 'memory' each worker would be "
                               "a separate chat")
    setup_logging(config.log_level, config.log_format)
    raise_fd_limit()
    try:
        code = run_workers(config) if config.workers > 1 else run_server(config)
    except OSError as exc:
        if exc.errno is None:  # not the socket's: the engine could not start
            raise click.ClickException(f"cannot start: {exc}") from None
        raise click.ClickException(
            f"cannot listen on {config.host}: {exc.strerror or exc}") from None
    sys.exit(code)


@main.command("oper-hash")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
              help="The operator password (prompted for, hidden, when not given).")
def oper_hash(password: str) -> None:
    """Print the scrypt hash of an operator password, for --oper NAME:HASH."""
    from .core.passwords import hash_password

    if not password:
        raise click.UsageError("the password must not be empty")
    click.echo(hash_password(password))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, envvar="CHAT_HOST",
              show_envvar=True, help="Server address.")
@click.option("--irc-port", type=click.IntRange(1, 65535), default=None,
              envvar="CHAT_IRC_PORT", show_envvar=True,
              help="Server's IRC port (irc mode).  [default: 6667; 6697 with --tls]")
@click.option("--http-port", type=click.IntRange(1, 65535), default=8080, show_default=True,
              envvar="CHAT_HTTP_PORT", show_envvar=True,
              help="Server's HTTP port (ws, sse, longpoll, poll, poll-close).")
@click.option("--nick", required=True, envvar="CHAT_NICK", show_envvar=True,
              help="Your nick.")
@click.option("--room", default="lobby", show_default=True,
              help="Room to join at start ('#' optional; empty: none).")
@click.option("--mode", type=click.Choice(MODES),
              default="irc", show_default=True,
              help="irc: push over one socket; ws: push over a WebSocket on the HTTP port; "
                   "sse: push over a long HTTP response; "
                   "longpoll: held requests; poll: a request every --interval over a "
                   "keep-alive connection; poll-close: a new TCP connection per request; "
                   "udp: each event a datagram, losses fetched over HTTP.")
@click.option("--interval", type=click.FloatRange(min=0, min_open=True), default=1.0,
              show_default=True, help="Seconds between polls (poll, poll-close).")
@click.option("--udp-port", type=click.IntRange(0, 65535), default=0, show_default=True,
              envvar="CHAT_UDP_PORT", show_envvar=True,
              help="Server's UDP port (udp mode; 0: ask the server).")
@click.option("--keepalive", type=click.FloatRange(min=0, min_open=True), default=15.0,
              show_default=True, help="Seconds between keepalive datagrams (udp mode).")
@click.option("--password", default=None, envvar="CHAT_PASSWORD",
              help="IRC connection password (PASS), if the server wants one.")
@click.option("--tls", is_flag=True, envvar="CHAT_TLS",
              help="TLS on every connection: IRC over TLS, HTTPS, WSS.")
@click.option("--insecure", is_flag=True,
              help="With --tls: do not check the server's certificate (self-signed tests).")
@click.option("--json", "json_mode", is_flag=True,
              help="Scriptable: send stdin lines, print each event as a JSON line "
                   "(automatic when stdin is not a terminal).")
@click.option("--linger", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Scriptable mode: seconds to keep receiving after end of input.")
def connect(**options: Any) -> None:
    """Chat from the terminal over IRC, WebSocket, the HTTP API or UDP (seven modes)."""
    from .client.main import connect as run_client

    if options["irc_port"] is None:
        options["irc_port"] = 6697 if options["tls"] else 6667
    if options["insecure"] and not options["tls"]:
        raise click.UsageError("--insecure goes with --tls")
    sys.exit(run_client(**options))


@main.command()
@click.option("--clients", type=click.IntRange(min=1), default=None,
              help="Clients per mode.  [default: 20; idle scenario: 100]")
@click.option("--rate", type=click.FloatRange(min=0, min_open=True), default=5.0,
              show_default=True, help="Messages per second the sender publishes.")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), default=20.0,
              show_default=True,
              help="Seconds of sending (idle: of holding still; dead-peer: of watching a "
                   "--server whose limits the lab does not know).")
@click.option("--modes", default=",".join(MODES),
              show_default=True, help="Comma-separated modes to compare.")
@click.option("--interval", type=click.FloatRange(min=0, min_open=True), default=1.0,
              show_default=True, help="Poll interval of poll and poll-close, in seconds.")
@click.option("--server", metavar="HOST", default=None,
              help="Use the server running on HOST instead of starting one.")
@click.option("--irc-port", type=click.IntRange(1, 65535), default=6667, show_default=True,
              help="IRC port of --server.")
@click.option("--http-port", type=click.IntRange(1, 65535), default=8080, show_default=True,
              help="HTTP port of --server.")
@click.option("--scenario", type=click.Choice(("throughput", "dead-peer", "idle", "nat")),
              default="throughput", show_default=True,
              help="throughput: latency and cost per mode; dead-peer: time to notice "
                   "vanished clients; idle: heartbeat traffic and memory per connection; "
                   "nat: a NAT and a proxy that drop idle flows, and the heartbeats that "
                   "keep them.")
@click.option("--sequential", is_flag=True,
              help="Run the modes one after another, so server CPU is charged per mode.")
@click.option("--sender", type=click.Choice(("irc", "http")), default=None,
              help="Transport of the sender.  [default: irc; http with --server]")
@click.option("--set", "settings", multiple=True, metavar="NAME=VALUE",
              help="A `chat serve` option for the server the lab starts (repeatable), "
                   "e.g. --set ping_interval=2.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, writable=True),
              help="Write every figure as JSON to this file.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, writable=True),
              help="Write the rows of the tables as CSV to this file (throughput: one per "
                   "mode).")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, writable=True),
              help="Draw the scenario's figures to this image, e.g. run.png (needs "
                   "matplotlib; checked before the run).")
@click.option("--quiet", type=click.FloatRange(min=0), default=5.0, show_default=True,
              help="Seconds with no message after the sending (polls then come back empty).")
@click.option("--burst", type=click.IntRange(min=0), default=0, show_default=True,
              help="Messages sent all at once half way through (on top of --rate).")
@click.option("--udp-rcvbuf", type=click.IntRange(min=0), default=0, show_default=True,
              help="Receive buffer (SO_RCVBUF, bytes) of the udp clients' sockets; small: a "
                   "burst overflows it (0: the system's default).")
@click.option("--direct", is_flag=True,
              help="No link relay: clients dial the server itself (no per-mode sockets "
                   "figures; no emulation).")
@link_options
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def compare(clients: int | None, modes: str, settings: tuple[str, ...], no_progress: bool,
            **options: Any) -> None:
    """Measure push against polling: latency, loss, requests, bytes and CPU per mode.

    Exit status: 0 ok; 1 a message was lost or refused (dead-peer: a bound was missed;
    idle: a client could not connect); 2 the lab could not run or a file was not written;
    130 interrupted.
    """
    from .compare import LabOptions, run
    from .compare.options import (
        IDLE_CLIENTS,
        NAT_CLIENTS,
        OptionError,
        parse_modes,
        parse_settings,
    )

    try:
        link = link_settings(options)
        opts = LabOptions(
            clients=clients or {"idle": IDLE_CLIENTS, "nat": NAT_CLIENTS}.get(
                options["scenario"], 20),
            modes=parse_modes(modes), settings=parse_settings(settings),
            progress=not no_progress, link=link, **options)
        if opts.server is not None and opts.settings:
            raise OptionError("--set configures the server the lab starts; not with --server")
        if opts.direct and link.emulates:
            raise OptionError("--direct leaves the link out: no --rtt, --loss and the like")
        opts.server_settings({})
    except OptionError as exc:
        raise click.UsageError(str(exc)) from None
    sys.exit(run(opts))


@main.command()
@click.option("--listen", required=True, metavar="HOST:PORT",
              help="Where clients connect (port 0: a free one, printed).")
@click.option("--to", "upstream", required=True, metavar="HOST:PORT",
              help="The server the clients are relayed to.")
@click.option("--protocol", type=click.Choice(("tcp", "udp", "both")), default="tcp",
              show_default=True, help="Relay TCP connections, UDP datagrams, or both on "
                                      "the same port number.")
@link_options
def link(listen: str, upstream: str, protocol: str, **options: Any) -> None:
    """Relay clients to a server through an emulated network path (RTT, jitter, loss,
    bandwidth, NAT and proxy idle timeouts) until Ctrl-C, then print what crossed it."""
    import asyncio

    from .link.service import parse_address, run_link
    from .runtime import new_event_loop

    try:
        listen_at, to = parse_address(listen), parse_address(upstream)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    settings = link_settings(options)
    protocols = ("tcp", "udp") if protocol == "both" else (protocol,)
    try:
        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            runner.run(run_link(listen_at, to, protocols, settings))
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {listen}: {exc.strerror or exc}") \
            from None
