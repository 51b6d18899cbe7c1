"""The client's pure pieces: cursors, backoff, IRC lines, SSE decoding, commands, rendering."""

from __future__ import annotations

import random
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chat.client.commands import UsageError, parse_input
from chat.client.ircline import (
    close_is_final,
    msgid,
    nick_of,
    parse_line,
    read_line,
    split_text,
    tag_time,
    text_limit,
)
from chat.client.ircwire import IrcProtocol
from chat.client.model import Backoff, ChatEvent, Cursors, event_from_json
from chat.client.presence import FanOut
from chat.client.render import event_fragments, format_delay, plain, status_line
from chat.client.sse import SseDecoder
from chat.client.transports import MODES, Counters, make_transport
from chat.irc.message import Message, encode, format_line


def test_cursors_drop_repeats_and_forget_on_restart() -> None:
    """An id at or below the room cursor is a repeat; a new run keeps the cursors (ids never
    repeat across runs); ids that went backwards make every id new again."""
    c = Cursors()
    assert c.accept("a", 5) and not c.accept("a", 5) and not c.accept("a", 3)
    assert c.accept("a", 6) and c.accept("b", 1)
    assert c.accept("a", 0) and c.accept("a", 0)  # no id: never deduplicated
    assert not c.see_epoch(100)
    assert not c.see_epoch(100)
    assert c.see_epoch(200)
    assert c.get("a") == 6 and not c.accept("a", 6) and c.epoch == 200
    c.restarted()
    assert c.get("a") == 0 and c.accept("a", 1)


def test_backoff_grows_with_jitter_and_caps() -> None:
    """Delays double per attempt, stay within [step/2, step], cap at the maximum, reset."""
    b = Backoff(0.1, 1.0, random.Random(7))
    delays = [b.next_delay() for _ in range(8)]
    for n, d in enumerate(delays):
        step = min(1.0, 0.1 * 2**n)
        assert step / 2 <= d <= step
    b.reset()
    assert b.next_delay() <= 0.1


def test_parse_line_with_tags() -> None:
    """Tags are unescaped; source, command and trailing parameter are split out."""
    line = parse_line(r"@msgid=42;time=2024-01-02T03:04:05.250Z;x=a\sb\:c "
                      ":bob!b@h PRIVMSG #lobby :hello there")
    assert line is not None
    assert line.tags["x"] == "a b;c" and msgid(line.tags) == 42
    assert nick_of(line) == "bob" and line.command == "PRIVMSG"
    assert line.params == ["#lobby", "hello there"]
    assert tag_time(line.tags, 0.0) == pytest.approx(1704164645.25)
    assert parse_line("") is None and parse_line("@a=b ") is None
    assert msgid({"msgid": "abc"}) == 0


@pytest.mark.parametrize("raw", [b"", b"\r", b"   ", b"@a=b", b"@a=b ", b":nick!u@h",
                                 b":nick!u@h  ", b"@t=1 :src", b":\xff\xfe"])
def test_junk_lines_are_ignored(raw: bytes) -> None:
    """A line the shared parser rejects (ParseError) is read as None, never raised."""
    assert read_line(raw) is None


async def test_irc_protocol_skips_junk_between_lines() -> None:
    """Junk from the server is dropped line by line; the lines around it still arrive."""
    commands: list[str] = []

    class Owner:
        counters = Counters()

        def _receive_line(self, proto: IrcProtocol, line: Message) -> None:
            commands.append(line.command)

    proto = IrcProtocol(cast(Any, Owner()))
    proto.data_received(b"PING :a\r\n:only-a-prefix\r\n@t=1\r\n \r\nPONG x\n")
    assert commands == ["PING", "PONG"]


@given(st.lists(st.text(alphabet=st.characters(blacklist_characters="\r\n\x00 :",
                                              codec="utf-8"), min_size=1),
                min_size=0, max_size=4),
       st.text(alphabet=st.characters(blacklist_characters="\r\n\x00",
                                      codec="utf-8")))
def test_format_then_parse_round_trips(middle: list[str], trailing: str) -> None:
    """What the shared format_line writes, the client's parse_line reads back the same."""
    line = parse_line(encode(format_line("PRIVMSG", *middle, trailing)).decode().rstrip("\r\n"))
    assert line is not None and line.params == [*middle, trailing]


def test_split_text_keeps_characters_whole() -> None:
    """Long text is cut under the byte limit without splitting a UTF-8 character."""
    text = "é" * 500
    pieces = split_text(text, 101)
    assert "".join(pieces) == text
    assert all(len(p.encode()) <= 101 for p in pieces)
    assert split_text("a\r\nb") == ["a  b"]


@given(st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=30))
def test_sse_decoder_is_independent_of_chunking(cuts: list[int]) -> None:
    """However the stream is cut into chunks, the same events come out."""
    stream = (b": heartbeat\r\n\r\nid: 1\nevent: message\ndata: {\"a\":1}\n\n"
              b"data: line1\r\ndata: line2\r\n\r\nid: 7\rdata: x\r\r\n")
    whole = SseDecoder().feed(stream)
    decoder, got, pos = SseDecoder(), [], 0
    for cut in cuts:
        got += decoder.feed(stream[pos:pos + cut])
        pos += cut
    got += decoder.feed(stream[pos:])
    assert got == whole
    assert [(e.id, e.event, e.data) for e in whole] == [
        ("1", "message", '{"a":1}'), ("1", "message", "line1\nline2"), ("7", "message", "x")]
    assert decoder.comments == 1


@pytest.mark.parametrize(("line", "name", "args"), [
    ("hello", "say", ["hello"]),
    ("//not a command", "say", ["/not a command"]),
    ("/join lobby", "join", ["lobby"]),
    ("/msg bob hi there", "msg", ["bob", "hi there"]),
    ("/MODE sse", "mode", ["sse"]),
    ("/part", "part", []),
    ("/quit see you", "quit", ["see you"]),
])
def test_parse_input(line: str, name: str, args: list[str]) -> None:
    """Chat lines and slash commands parse into a command and its arguments."""
    command = parse_input(line)
    assert command is not None and (command.name, command.args) == (name, args)


@pytest.mark.parametrize("line", ["/nope", "/join", "/join a b c", "/msg bob", "/mode pigeon",
                                  "/stats now"])
def test_parse_input_usage_errors(line: str) -> None:
    """Unknown commands and wrong arities are one-line usage errors."""
    with pytest.raises(UsageError) as info:
        parse_input(line)
    assert "\n" not in str(info.value)


def test_rendering() -> None:
    """An event line shows who, what and its delay; the status line every counter."""
    event = ChatEvent("lobby", 3, 1000.0, "message", "bob", "hi", 1000.25)
    assert event.delay_ms == pytest.approx(250.0)
    text = plain(event_fragments(event, "alice"))
    assert "#lobby <bob> hi" in text and "(+250 ms)" in text
    assert "-> *bob* psst" in plain(event_fragments(
        ChatEvent("", 4, 1000.0, "message", "alice", "psst", 1000.0, to="bob"), "alice"))
    assert format_delay(1500) == "+1.5 s" and format_delay(0.25) == "+0.2 ms"
    line = status_line("poll", "connected", "lobby", "alice",
                       Counters(requests=3, empty_polls=2, bytes_in=2048, bytes_out=10,
                                connections_opened=1, heartbeat_rtt_ms=0.5))
    for part in ("poll", "connected", "requests 3", "empty polls 2", "in 2.0 KiB",
                 "out 10 B", "TCP conns 1", "rtt 0.50 ms"):
        assert part in line


def test_event_json_and_make_transport() -> None:
    """API event objects map to ChatEvents; every mode has a transport, others are refused."""
    event = event_from_json("lobby", {"id": 9, "ts": 5.0, "kind": "join", "nick": "x",
                                      "text": ""}, 6.0)
    assert (event.id, event.kind, event.delay_ms) == (9, "join", 1000.0)
    assert set(event.to_json()) >= {"id", "ts", "kind", "nick", "text", "delay_ms"}
    for mode in MODES:
        t = make_transport(mode, host="h", irc_port=1, http_port=2, nick="n",
                           on_event=lambda e: None)
        assert t.mode == mode and t.state == "connecting"
    with pytest.raises(ValueError):
        make_transport("pigeon", host="h", irc_port=1, http_port=2, nick="n",
                       on_event=lambda e: None)


# --- the WHATWG event-stream rules --------------------------------------------------------

def _decode(stream: bytes) -> list[tuple[str, str, str]]:
    return [(e.id, e.event, e.data) for e in SseDecoder().feed(stream)]


def test_sse_last_event_id_outlives_its_event() -> None:
    """The last event id is kept until another ``id:`` line (it is not reset per event)."""
    assert _decode(b"id: 5\ndata: a\n\ndata: b\n\nid\ndata: c\n\n") == [
        ("5", "message", "a"), ("5", "message", "b"), ("", "message", "c")]


def test_sse_blocks_without_data_are_not_dispatched() -> None:
    """An id-only or event-only block dispatches nothing; its id still counts, its type not."""
    assert _decode(b"id: 7\n\nevent: gap\n\ndata: x\n\n") == [("7", "message", "x")]


def test_sse_field_rules() -> None:
    """A leading BOM is dropped; a line without colon is a field with an empty value;
    ``data:`` lines join with LF; an id holding NUL is ignored; unknown fields are ignored."""
    stream = b"\xef\xbb\xbfdata\nfoo: bar\nid: 1\x002\ndata:  two spaces\n\n"
    assert _decode(stream) == [("", "message", "\n two spaces")]


def test_sse_retry_field() -> None:
    """``retry:`` with digits only sets the reconnection time in ms; anything else is ignored."""
    decoder = SseDecoder()
    assert decoder.retry is None
    decoder.feed(b"retry: 1500\n\n")
    assert decoder.retry == 1500
    decoder.feed(b"retry: soon\nretry: 15 00\n\n")
    assert decoder.retry == 1500


def test_sse_unfinished_event_is_not_dispatched() -> None:
    """An event is only dispatched by its blank line (one cut off at the end is dropped)."""
    assert _decode(b"data: whole\n\ndata: cut off\n") == [("", "message", "whole")]


# --- long lines -----------------------------------------------------------------------------

def test_text_limit_fits_the_relayed_line() -> None:
    """A piece fits the IRC line the server relays, whatever our user@host (63-byte host)."""
    limit = text_limit("alice", "#lobby")
    line = f":alice!~alice@{'h' * 63} PRIVMSG #lobby :" + "x" * limit
    assert len(line.encode()) == 510
    assert text_limit("alice", "#lobby") > text_limit("alice", "#a-much-longer-room-name")


def test_split_text_prefers_spaces_and_loses_nothing() -> None:
    """A long line is cut after a space when one is near the end, and the pieces join back."""
    words = " ".join(f"word{i:03d}" for i in range(80))  # 639 characters
    pieces = split_text(words, 100)
    assert "".join(pieces) == words
    assert all(len(p.encode()) <= 100 for p in pieces)
    assert all(p.endswith(" ") for p in pieces[:-1])
    assert split_text("x" * 250, 100) == ["x" * 100, "x" * 100, "x" * 50]


# --- QUIT and NICK are shown once ------------------------------------------------------------

def _presence(room: str, event_id: int, kind: str = "quit", nick: str = "bob",
              text: str = "bye") -> ChatEvent:
    return ChatEvent(room, event_id, 0.0, kind, nick, text, 0.0)


def test_fanout_shows_each_quit_once() -> None:
    """The copies of one QUIT (one per shared room, ids close together) are recognised in any
    order; a later QUIT by the same user (after another event) is new again."""
    fan = FanOut()
    assert fan.first(_presence("side", 11))          # an HTTP feed that is ahead
    assert not fan.first(_presence("lobby", 10))     # the same QUIT in another room
    assert not fan.first(_presence("", 10))          # ... and as the IRC line
    assert fan.first(_presence("lobby", 30, kind="join"))
    assert fan.first(_presence("lobby", 31))         # quit again after rejoining: new
    assert fan.first(_presence("lobby", 33))         # the same room twice: two quits
    assert fan.first(_presence("lobby", 0))
    assert fan.first(_presence("lobby", 0))          # without ids nothing is recognised


def test_fanout_window_closes_at_the_next_event() -> None:
    """Once a later event is seen, only ids below it can be copies of an earlier fan-out."""
    fan = FanOut()
    assert fan.first(_presence("", 10, kind="nick", text="bobby"))
    assert fan.first(_presence("lobby", 12, kind="message", nick="carol", text="hi"))
    assert not fan.first(_presence("side", 11, kind="nick", text="bobby"))
    assert fan.first(_presence("quiet", 13, kind="nick", text="bobby"))


@pytest.mark.parametrize(("error", "final"), [
    ("Closing Link: Idle timeout", True),
    ("Closing Link: Excess Flood", True),
    ("Closing Link: SendQ exceeded", True),
    ("Closing Link: Killed (oper: go away)", True),
    ("Closing Link: Ping timeout: 45 seconds", False),
    ("Server shutting down", False),
    ("Closing Link: Server shutting down", False),
    ("", False),
])
def test_which_server_closes_are_final(error: str, final: bool) -> None:
    """A close the server chose (idle, flood, kill) is final; ping timeouts and restarts not."""
    assert close_is_final(error) is final


@pytest.mark.parametrize(("line", "name", "args"), [
    ("/topic", "topic", []),
    ("/topic  a new topic, with spaces", "topic", ["a new topic, with spaces"]),
    ("/reconnect", "reconnect", []),
])
def test_parse_new_commands(line: str, name: str, args: list[str]) -> None:
    """/topic takes free text (or nothing); /reconnect takes nothing."""
    command = parse_input(line)
    assert command is not None and (command.name, command.args) == (name, args)
