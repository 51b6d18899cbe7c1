"""Channel and user modes as data: parsing MODE strings, checking parameters, ban masks (pure).

Both transports parse a mode request here before they ask the engine for it, so an IRC
``MODE #c +kl-v key 5 bob`` and an HTTP ``{"modes": "+kl-v", "args": ["key", "5", "bob"]}``
are refused or accepted alike.  The hub applies the resulting :class:`Change` values
(:mod:`chat.core.channels`).

Channel modes (005 ``CHANMODES=b,k,l,imnst`` and ``PREFIX=(ov)@+``):

* ``b`` list of ban masks (``nick!user@host`` with ``*`` and ``?``); ``b`` alone lists them;
* ``k`` key (a parameter both ways; ``-k`` ignores what it is given);
* ``l`` member limit (a parameter when set; a value that is not a positive integer is
  ignored, as modern.ircdocs.horse recommends);
* ``i m n s t`` flags; ``o v`` give or take operator and voice status.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from .errors import HubError, InvalidModeParam, UnknownMode, UnknownUserMode
from .names import casefold

CHANNEL_FLAGS = "imnst"        # modes without a parameter (CHANMODES type D)
PREFIXES = {"o": "@", "v": "+"}  # membership modes, highest first (005 PREFIX)
CHANMODES = "b,k,l," + CHANNEL_FLAGS
DEFAULT_MODES = "nt"           # what a new channel starts with
KEYLEN = 32                    # longest channel key (005 KEYLEN)
MAX_MODES = 6                  # changes with a parameter per MODE command (005 MODES)
MAX_BANS = 100                 # entries in a channel's ban list (005 MAXLIST=b:100)
MAX_LIMIT = 1_000_000          # a larger +l is clamped: it cannot mean anything more
USER_MODES = "iow"             # invisible, operator (set by OPER only), wallops
SETTABLE_USER_MODES = "iw"     # what MODE <nick> +... may add


class Change(NamedTuple):
    """One mode change: ``adding``, the letter, and its parameter ("" if none)."""

    adding: bool
    mode: str
    param: str = ""

    def takes_param(self) -> bool:
        return self.mode in "bkov" or (self.adding and self.mode == "l")


class ParsedModes(NamedTuple):
    """A MODE request parsed: the changes to ask for, what was refused, lists to show."""

    changes: list[Change]
    errors: list[HubError]
    lists: list[str]   # list modes given without a parameter (``+b``: show the ban list)


def parse_channel_modes(channel: str, modes: str, params: list[str]) -> ParsedModes:
    """Parse ``modes`` with its ``params`` for ``channel`` (see the module docstring).

    A mode lacking its parameter is skipped; an unknown letter is refused once (472);
    a bad key is refused with 696.  At most :data:`MAX_MODES` parameterised changes are
    taken; the rest are ignored, as the 005 ``MODES`` token tells clients.
    """
    changes: list[Change] = []
    errors: list[HubError] = []
    lists: list[str] = []
    queue = list(params)
    adding = True
    for mode in modes:
        if mode in "+-":
            adding = mode == "+"
            continue
        if mode in CHANNEL_FLAGS:
            changes.append(Change(adding, mode))
            continue
        if mode not in "bklov":
            if not any(e.subject == mode for e in errors):
                errors.append(UnknownMode(mode, "is unknown mode char to me"))
            continue
        if sum(c.takes_param() for c in changes) >= MAX_MODES:
            continue
        change = _with_param(channel, Change(adding, mode), queue, errors, lists)
        if change is not None:
            changes.append(change)
    return ParsedModes(changes, errors, lists)


def _with_param(channel: str, change: Change, queue: list[str], errors: list[HubError],
                lists: list[str]) -> Change | None:
    """``change`` with its parameter taken from ``queue`` and checked, or None to skip it."""
    mode, adding = change.mode, change.adding
    if mode == "l" and not adding:
        return change
    param = queue.pop(0) if queue else None
    if param is None:
        if mode == "b" and "b" not in lists:
            lists.append("b")
        return Change(False, "k", "*") if mode == "k" and not adding else None
    if mode == "k":
        if not adding:
            return Change(False, "k", "*")  # the key given with -k does not matter
        problem = key_problem(param)
        if problem:
            errors.append(InvalidModeParam(channel, problem, "k", param or "*"))
            return None
    elif mode == "l":
        limit = parse_limit(param)
        return None if limit is None else Change(True, "l", str(limit))
    elif mode == "b":
        param = normalize_mask(param)
    return Change(adding, mode, param)


def key_problem(key: str) -> str:
    """Why ``key`` cannot be a channel key ("" if it can): empty, spaces, commas, long."""
    if not key:
        return "Key must not be empty"
    if any(ch in key for ch in " ,:\x00\r\n") or key[0] == ":":
        return "Key must not contain spaces, commas or colons"
    if len(key) > KEYLEN:
        return f"Key is longer than {KEYLEN} characters"
    return ""


def parse_limit(text: str) -> int | None:
    """The member limit ``text`` asks for, or None if it is not a positive integer."""
    if not text.isdigit():
        return None
    value = int(text)
    return min(value, MAX_LIMIT) if value > 0 else None


def normalize_mask(mask: str) -> str:
    """Complete a ban mask to ``nick!user@host``: ``bob`` -> ``bob!*@*``, ``*@h`` -> ``*!*@h``."""
    mask = mask.replace(" ", "")[:200] or "*"
    if "!" not in mask and "@" not in mask:
        return mask + "!*@*"
    if "!" not in mask:
        return "*!" + mask
    if "@" not in mask:
        return mask + "@*"
    return mask


def mask_pattern(mask: str) -> re.Pattern[str]:
    """A regex matching what ``mask`` matches (``*`` any run, ``?`` one character),
    compared casefolded (rfc1459)."""
    parts = ("." if ch == "?" else ".*" if ch == "*" else re.escape(ch)
             for ch in casefold(mask))
    return re.compile("".join(parts) + r"\Z", re.DOTALL)


def format_changes(changes: list[Change]) -> tuple[str, tuple[str, ...]]:
    """``+ov-b``-style text and the parameters, for a MODE line or a mode event."""
    text: list[str] = []
    params: list[str] = []
    sign = ""
    for change in changes:
        want = "+" if change.adding else "-"
        if want != sign:
            text.append(want)
            sign = want
        text.append(change.mode)
        if change.takes_param():
            params.append(change.param)
    return "".join(text), tuple(params)


def decode_changes(modes: str, params: tuple[str, ...]) -> list[Change]:
    """The inverse of :func:`format_changes` (what a mode Op carries)."""
    out: list[Change] = []
    queue = list(params)
    adding = True
    for mode in modes:
        if mode in "+-":
            adding = mode == "+"
            continue
        change = Change(adding, mode)
        if change.takes_param():
            change = Change(adding, mode, queue.pop(0) if queue else "")
        out.append(change)
    return out


def parse_user_modes(current: str, modes: str) -> tuple[str, str, list[HubError]]:
    """``(added, removed, errors)`` of MODE <own nick> ``modes`` against ``current``.

    ``+o`` is ignored (only OPER gives it); ``-o`` drops operator status.  Unknown
    letters give one 501.
    """
    have = set(current)
    errors: list[HubError] = []
    adding = True
    for mode in modes:
        if mode in "+-":
            adding = mode == "+"
        elif mode in USER_MODES:
            if adding and mode in SETTABLE_USER_MODES:
                have.add(mode)
            elif not adding:
                have.discard(mode)
        elif not errors:
            errors.append(UnknownUserMode("", "Unknown MODE flag"))
    added = "".join(m for m in USER_MODES if m in have and m not in current)
    removed = "".join(m for m in USER_MODES if m in current and m not in have)
    return added, removed, errors
