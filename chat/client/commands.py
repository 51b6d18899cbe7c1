"""What the user typed: a chat line or a slash command, checked for usage (pure).

:func:`parse_input` turns one input line into a :class:`Command`; a usage mistake raises
:class:`UsageError` whose message is the one line shown to the user.  ``//text`` sends
``/text`` as a message.
"""

from __future__ import annotations

from typing import NamedTuple

from .model import MODES

HELP: dict[str, tuple[str, str]] = {
    # name: (usage, what it does)
    "join": ("/join <room> [key]", "join a room (a +k room with its key) and make it current"),
    "part": ("/part [room]", "leave a room (default: the current one)"),
    "nick": ("/nick <new nick>", "change your nick"),
    "msg": ("/msg <nick> <text>", "send a private message"),
    "me": ("/me <action>", "an action to the current room (shown as * you <action>)"),
    "who": ("/who [room]", "list the members of a room (@: operator)"),
    "topic": ("/topic [text]", "show the current room's topic, or set it"),
    "mode": ("/mode <" + "|".join(MODES) + ">",
             "switch transport, keeping your rooms and your place in them"),
    "stats": ("/stats", "show what this connection has cost so far"),
    "reconnect": ("/reconnect", "connect again after the server closed the connection"),
    "quit": ("/quit", "leave"),
    "help": ("/help", "this list"),
}
_ARITY = {"join": (1, 2), "part": (0, 1), "nick": (1, 1), "msg": (2, 2), "me": (1, 1),
          "who": (0, 1), "topic": (0, 1), "mode": (1, 1), "stats": (0, 0), "reconnect": (0, 0),
          "quit": (0, 1), "help": (0, 1)}
_FREE_TEXT = frozenset({"msg", "me", "topic", "quit"})


class Command(NamedTuple):
    name: str          # "say" for a plain chat line, else a key of HELP
    args: list[str]


class UsageError(ValueError):
    """A line that cannot be run; ``str()`` is the one-line message for the user."""


def parse_input(line: str) -> Command | None:
    """The command ``line`` asks for; None for a blank line."""
    text = line.rstrip("\r\n")
    if not text.strip():
        return None
    if text.startswith("//"):
        return Command("say", [text[1:]])
    if not text.startswith("/"):
        return Command("say", [text])
    name, _, rest = text[1:].partition(" ")
    name = name.lower()
    if name in ("q", "exit"):
        name = "quit"
    if name == "j":
        name = "join"
    if name not in _ARITY:
        raise UsageError(f"unknown command /{name}; /help lists the commands")
    low, high = _ARITY[name]
    if name in _FREE_TEXT:  # the last argument is text and may hold spaces
        args = rest.split(None, high - 1) if rest.strip() else []
    else:
        args = rest.split()
    if not low <= len(args) <= high:
        raise UsageError("usage: " + HELP[name][0])
    if name == "mode" and args[0] not in MODES:
        raise UsageError(f"unknown mode {args[0]!r}; choose from {', '.join(MODES)}")
    return Command(name, args)


def help_lines() -> list[str]:
    width = max(len(usage) for usage, _ in HELP.values())
    lines = [f"{usage:<{width}}  {what}" for usage, what in HELP.values()]
    lines.append(f"{'<text>':<{width}}  send to the current room (//text sends /text)")
    return lines
