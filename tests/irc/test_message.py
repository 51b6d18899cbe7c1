"""Pure tests of the IRC line parser/formatter and the line splitter (Hypothesis included)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chat.irc.message import (
    MAX_INPUT,
    LineSplitter,
    Message,
    ParseError,
    decode,
    encode,
    escape_tag_value,
    format_line,
    line_too_long,
    parse,
    parse_server_time,
    server_time,
    unescape_tag_value,
)

MIDDLE = st.text(st.characters(blacklist_characters=" \r\n\0:", blacklist_categories=["Cs"]),
                 min_size=1, max_size=20)
TRAILING = st.text(st.characters(blacklist_characters="\r\n\0", blacklist_categories=["Cs"]),
                   max_size=60)
COMMAND = st.from_regex(r"\A([A-Z]{1,10}|[0-9]{3})\Z")
TAG_KEY = st.from_regex(r"\A\+?[a-z][a-z0-9/.-]{0,10}\Z")
TAG_VALUE = st.text(st.characters(blacklist_characters="\0", blacklist_categories=["Cs"]),
                    max_size=20)


def test_parse_full_line() -> None:
    """Tags, source, middle parameters and a trailing parameter are all split out."""
    msg = parse(r"@time=2020-01-01T00:00:00.000Z;msgid=7;+x=a\sb :nick!u@h PRIVMSG #chan :hi there")
    assert msg == Message("PRIVMSG", ["#chan", "hi there"], "nick!u@h",
                          {"time": "2020-01-01T00:00:00.000Z", "msgid": "7", "+x": "a b"})


def test_parse_is_case_insensitive_and_tolerates_extra_spaces() -> None:
    """The command is upper-cased and runs of spaces do not create empty parameters."""
    assert parse("privmsg   #a    :x  y") == Message("PRIVMSG", ["#a", "x  y"])


def test_parse_empty_trailing_and_colon_in_trailing() -> None:
    """An empty trailing parameter is kept; a colon inside trailing is text."""
    assert parse("TOPIC #a :") == Message("TOPIC", ["#a", ""])
    assert parse("PRIVMSG #a :a :b") == Message("PRIVMSG", ["#a", "a :b"])


@pytest.mark.parametrize("line", ["", "   ", ":prefix.only", "@a=b", "@a=b :src"])
def test_parse_rejects_lines_without_command(line: str) -> None:
    """Lines with no command raise ParseError."""
    with pytest.raises(ParseError):
        parse(line)


def test_format_adds_colon_only_when_needed() -> None:
    """The last parameter gets ':' if empty, containing spaces, or starting with ':'."""
    assert format_line("NICK", "bob") == "NICK bob"
    assert format_line("PRIVMSG", "#a", "hi you", source="n!u@h") == ":n!u@h PRIVMSG #a :hi you"
    assert format_line("TOPIC", "#a", "") == "TOPIC #a :"
    assert format_line("X", ":p") == "X ::p"


def test_encode_never_splits_a_line() -> None:
    """CR/LF inside text become spaces and NUL is dropped, so one line stays one line."""
    assert encode("PRIVMSG #a :one\r\ntwo\nthree\0") == b"PRIVMSG #a :one two three\r\n"


def test_decode_is_lenient() -> None:
    """Invalid UTF-8 is replaced, not fatal."""
    assert decode(b"PRIVMSG #a :caf\xe9") == "PRIVMSG #a :caf\ufffd"


def test_server_time_round_trip() -> None:
    """The time tag has millisecond precision and a Z suffix, and parses back."""
    assert server_time(0.5) == "1970-01-01T00:00:00.500Z"
    assert parse_server_time("1970-01-01T00:00:00.500Z") == 0.5
    assert parse_server_time("yesterday") is None


def test_line_length_limits() -> None:
    """510 bytes of body are fine, 511 are not; a client's tags get 4096 bytes of their own
    ('@', 4094 bytes of tag data, the space), whatever the body's length."""
    assert not line_too_long(b"x" * 510)
    assert line_too_long(b"x" * 511)
    tags = b"@" + b"a" * 4094 + b" "
    assert len(tags) == 4096
    assert not line_too_long(tags + b"y" * 510)
    assert line_too_long(tags + b"y" * 511)
    assert line_too_long(b"@" + b"a" * 4095 + b" PING x")
    assert not line_too_long(b"@+t=" + b"a" * 4091 + b" TAGMSG #c")
    assert line_too_long(b"@+t=" + b"a" * 4092 + b" TAGMSG #c")


def test_splitter_handles_crlf_lf_and_partial_lines() -> None:
    """CR LF and bare LF both end lines; a partial line waits for its end."""
    splitter = LineSplitter()
    assert splitter.feed(b"NICK a\r\nUSER") == [b"NICK a"]
    assert not splitter.empty  # a partial line waits: the connection keeps this splitter
    assert splitter.feed(b" x 0 * :y\n\r\n") == [b"USER x 0 * :y"]
    assert splitter.empty


def test_splitter_flags_too_long_lines_once_and_recovers() -> None:
    """An endless line is reported once as None, dropped, and the next line parses."""
    splitter = LineSplitter()
    out = splitter.feed(b"x" * (MAX_INPUT + 10))
    assert out == [None]
    assert not splitter.empty  # discarding up to the next LF is state too
    assert splitter.feed(b"y" * 100_000) == []
    assert splitter.feed(b"zzz\r\nPING a\r\n") == [b"PING a"]
    assert splitter.feed(b"a" * 600 + b"\r\n") == [None]


@given(COMMAND, st.lists(MIDDLE, max_size=5), TRAILING,
       st.dictionaries(TAG_KEY, TAG_VALUE, max_size=4))
def test_format_then_parse_round_trips(command: str, middle: list[str], trailing: str,
                                       tags: dict[str, str]) -> None:
    """Whatever format_line writes, parse reads back unchanged."""
    params = [*middle, trailing]
    line = format_line(command, *params, source="n!u@h", tags=tags or None)
    assert parse(line) == Message(command, params, "n!u@h", tags or None)


@given(TAG_VALUE)
def test_tag_escaping_round_trips(value: str) -> None:
    """Escaped tag values never contain ';', space, CR or LF and unescape to the original."""
    escaped = escape_tag_value(value)
    assert not any(ch in escaped for ch in "; \r\n")
    assert unescape_tag_value(escaped) == value


@given(st.text(max_size=200))
def test_parse_never_crashes(line: str) -> None:
    """Arbitrary text either parses to a message with a command or raises ParseError."""
    try:
        msg = parse(line)
    except ParseError:
        return
    assert msg.command and " " not in msg.command


@given(st.binary(max_size=3000), st.lists(st.integers(1, 400), max_size=10))
def test_splitter_is_independent_of_chunking(data: bytes, cuts: list[int]) -> None:
    """Feeding bytes in any chunks yields the same lines as feeding them at once."""
    whole = LineSplitter().feed(data)
    splitter = LineSplitter()
    pieces: list[bytes | None] = []
    start = 0
    for cut in cuts:
        pieces += splitter.feed(data[start:start + cut])
        start += cut
    pieces += splitter.feed(data[start:])
    assert pieces == whole
