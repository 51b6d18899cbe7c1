"""How events, the status line and /stats look in the terminal (pure: text in, text out).

Fragments are ``(style, text)`` pairs, the form prompt_toolkit's ``FormattedText`` takes;
styles are class names resolved by :data:`STYLE` in :mod:`chat.client.ui`.
"""

from __future__ import annotations

import time

from ..core.names import casefold
from .model import ChatEvent, Counters

Fragments = list[tuple[str, str]]


def format_delay(ms: float) -> str:
    """``+850 ms`` / ``+1.2 s``: how long an event took to arrive."""
    ms = max(0.0, ms)
    if ms < 1000:
        return f"+{ms:.0f} ms" if ms >= 10 else f"+{ms:.1f} ms"
    return f"+{ms / 1000:.1f} s"


def format_bytes(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n / (1024 * 1024):.1f} MiB"


def event_fragments(event: ChatEvent, me: str) -> Fragments:
    """One event as a line: time, where, who, what, and its delay."""
    clock = time.strftime("%H:%M:%S", time.localtime(event.ts))
    where = f"#{event.room} " if event.room else ""
    out: Fragments = [("class:time", clock + " ")]
    kind, nick, text = event.kind, event.nick, event.text
    action = _action(text) if kind == "message" else None
    if kind == "invite":
        whom = "you" if casefold(event.to) == casefold(me) else event.to
        out.append(("class:info", f"* {nick} invites {whom} to #{event.room}"))
    elif action is not None:  # a /me
        who = f"-> *{event.to}* " if event.to and nick == me else ""
        out += [("class:private" if event.to else "class:room", who or where),
                ("class:info", f"* {nick} {action}")]
    elif event.to:
        if nick == me:
            out.append(("class:private", f"-> *{event.to}* "))
        else:
            out.append(("class:private", f"*{nick}* "))
        out.append(("", text))
    elif kind == "message":
        out += [("class:room", where), ("class:self" if nick == me else "class:nick",
                                        f"<{nick}> "), ("", text)]
    elif kind == "notice":
        out += [("class:room", where), ("class:nick", f"-{nick}- "), ("", text)]
    else:
        out += [("class:room", where), ("class:info", _presence(event))]
    out.append(("class:delay", f"  ({format_delay(event.delay_ms)}"
                                + (", lost and fetched over HTTP)" if event.recovered else ")")))
    return out


def _action(text: str) -> str | None:
    """What a CTCP ACTION (``/me waves``) does (``waves``); None if ``text`` is not one."""
    if text.startswith("\x01ACTION ") and text.endswith("\x01"):
        return text[8:-1]
    return None


def _presence(event: ChatEvent) -> str:
    kind, nick, text = event.kind, event.nick, event.text
    reason = f" ({text})" if text else ""
    if kind == "join":
        return f"* {nick} joined"
    if kind == "part":
        return f"* {nick} left{reason}"
    if kind == "quit":
        return f"* {nick} quit{reason}"
    if kind == "nick":
        return f"* {nick} is now known as {text}"
    if kind == "topic":
        return f"* {nick} set the topic: {text}"
    if kind == "kick":
        target = event.args[0] if event.args else "someone"
        return f"* {nick} kicked {target} from #{event.room}{reason}"
    if kind == "mode":
        return f"* {nick} sets mode {' '.join((text, *event.args))}"
    return f"* {nick} {kind} {text}".rstrip()


def plain(fragments: Fragments) -> str:
    return "".join(text for _style, text in fragments)


def format_rtt(ms: float | None) -> str:
    if ms is None:
        return "-"
    return f"{ms:.2f} ms" if ms < 1 else f"{ms:.1f} ms"


def status_line(mode: str, state: str, room: str | None, nick: str, c: Counters) -> str:
    """The bottom toolbar: mode, state and what the connection has cost so far."""
    rtt = format_rtt(c.heartbeat_rtt_ms)
    where = f"#{room}" if room else "no room"
    udp = (f" | datagrams lost {c.lost} / reordered {c.reordered} / recovered {c.recovered}"
           if mode == "udp" else "")
    return (f" {mode} | {state} | {nick} in {where} | requests {c.requests}"
            f" | empty polls {c.empty_polls} | in {format_bytes(c.bytes_in)}"
            f" | out {format_bytes(c.bytes_out)} | TCP conns {c.connections_opened}"
            f" | rtt {rtt}{udp} ")


def stats_lines(mode: str, c: Counters, seconds: float) -> list[str]:
    """The /stats answer: every counter, plus rates over the connection's lifetime."""
    per_min = 60.0 / seconds if seconds > 0 else 0.0
    rtt = format_rtt(c.heartbeat_rtt_ms)
    label = "lines sent" if mode == "irc" else "requests"
    return [
        f"mode {mode}, {seconds:.0f} s connected",
        f"{label}: {c.requests} ({c.requests * per_min:.1f}/min), "
        f"empty polls: {c.empty_polls}, events received: {c.events}",
        f"bytes in: {c.bytes_in} ({format_bytes(c.bytes_in)}), "
        f"bytes out: {c.bytes_out} ({format_bytes(c.bytes_out)})",
        f"TCP connections opened: {c.connections_opened}, reconnects: {c.reconnects}, "
        f"last heartbeat round trip: {rtt}",
    ] + ([f"datagrams in: {c.datagrams_in}, out: {c.datagrams_out}; event datagrams lost: "
          f"{c.lost}, reordered: {c.reordered}, came after their fetch: {c.late}; events "
          f"recovered over HTTP: {c.recovered}"] if mode == "udp" else [])
