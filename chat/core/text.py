"""The one rule for chat text, whatever transport it came by (pure).

Every text a client sends that other clients see (a message, a notice, a topic, a part or
quit reason) goes through :func:`clean_text` before it reaches the engine: the JSON front
ends (HTTP and WebSocket) call it on each text field, the IRC adapter on each line.  So an
IRC user, a poller and a WebSocket see the same characters, and no transport can smuggle
into another what that one would not carry.

The rule:

* **Refused** (the JSON front ends answer 400 ``bad_request``): LF, CR and NUL.  They end
  or break IRC lines; on IRC, where LF ends the line already, a CR or NUL inside a line is
  **replaced** by a space instead (a bare CR used to reach IRC as a space but pollers as
  ``\\r``).
* **Replaced by a space**: every other C0 control, DEL and the C1 controls (U+0080 to
  U+009F, NEL among them), LINE SEPARATOR (U+2028) and PARAGRAPH SEPARATOR (U+2029): VT and
  FF that break lines in some clients, ESC that starts terminal escape sequences, and
  ``\x01`` unless it frames a CTCP ``ACTION`` (``/me``): ``\x01ACTION waves\x01`` is
  kept, any other CTCP (DCC, VERSION, ...) is not relayed as one.  A space, one byte,
  so that a cleaned text is never longer than the original and still fits its IRC line.
* **Kept**: TAB and mIRC's formatting codes, which IRC clients show as styles: bold
  ``\\x02``, colour ``\\x03``, hex colour ``\\x04``, reset ``\\x0f``, monospace ``\\x11``,
  reverse ``\\x16``, italic ``\\x1d``, strike-through ``\\x1e``, underline ``\\x1f``.
  Everything else (printable text, emoji, other scripts) is untouched.
"""

from __future__ import annotations

import re

LINE_BREAKERS = "\r\n\0"
KEPT = frozenset("\t\x02\x03\x04\x0f\x11\x16\x1d\x1e\x1f")
ACTION_START = "\x01ACTION "

# Any character the rule may change (checked first: most text has none of them).
_SUSPECT = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_SUSPECT_BYTES = re.compile(b"[\x00\x01\x05-\x08\x0b-\x0e\x10\x12-\x15\x17-\x1c\x7f]"
                            b"|\xc2[\x80-\x9f]|\xe2\x80[\xa8\xa9]")


class TextRefused(ValueError):
    """The text holds a character no transport may carry (LF, CR or NUL)."""


def clean_text(text: str, *, lines: bool = False) -> str:
    """``text`` under the rule above.

    ``lines=False`` (the JSON front ends, one field): raise :class:`TextRefused` on LF, CR
    or NUL; a CTCP ACTION must be the whole text.  ``lines=True`` (a whole IRC line, LF
    already gone): CR and NUL become spaces, and the ACTION is the line's trailing
    parameter (after `` :``).
    """
    if not _SUSPECT.search(text):
        return text
    if not lines and any(ch in text for ch in LINE_BREAKERS):
        raise TextRefused("one line without CR, LF or NUL")
    keep = -1, -1  # the two \x01 that frame a CTCP ACTION
    start = text.find(ACTION_START)
    if start >= 0 and text.endswith("\x01") and len(text) - start > len(ACTION_START) and (
            start == 0 if not lines else text[start - 2:start] == " :"):
        keep = start, len(text) - 1
    out = []
    for i, ch in enumerate(text):
        out.append(ch if ch in KEPT or i in keep or not _SUSPECT.match(ch) else " ")
    return "".join(out)


def line_needs_cleaning(raw: bytes) -> bool:
    """True if the raw IRC line holds a byte sequence :func:`clean_text` would change
    (a fast test on the bytes, so that the common line is not decoded twice)."""
    return _SUSPECT_BYTES.search(raw) is not None


def fit_utf8(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` bytes of UTF-8, never inside a character."""
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[:max(0, limit)].decode("utf-8", "ignore")
