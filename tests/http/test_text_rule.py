"""The one text rule of every transport (chat.core.text, issue 13 items 6 and 11)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chat.core.text import TextRefused, clean_text, fit_utf8, line_needs_cleaning
from tests.conftest import MakeServer

from .util import Irc, call, new_session


@pytest.mark.parametrize("char", ["\x0b", "\x0c", "\x85", "\u2028", "\u2029", "\x1b", "\x01",
                                  "\x7f", "\x9b", "\x07"])
def test_controls_become_spaces(char: str) -> None:
    """VT, FF, NEL, LS, PS, ESC, a stray \\x01, DEL, C1 and BEL become one space each."""
    assert clean_text(f"a{char}b") == "a b"


@pytest.mark.parametrize("char", ["\r", "\n", "\0"])
def test_line_breakers_are_refused_in_json_text(char: str) -> None:
    """CR, LF and NUL are refused in a JSON text field..."""
    with pytest.raises(TextRefused):
        clean_text(f"a{char}b")


def test_cr_and_nul_in_an_irc_line_become_spaces() -> None:
    """...and become spaces inside an IRC line (LF already ended it)."""
    assert clean_text("PRIVMSG #a :x\ry\0z", lines=True) == "PRIVMSG #a :x y z"


def test_formatting_codes_tab_and_ctcp_action_are_kept() -> None:
    """mIRC formatting, TAB and a CTCP ACTION survive; other CTCP does not."""
    styled = "\x02bold\x02 \x0304red\x03 \x1ditalic\x1d \x1funder\x1f\treset\x0f"
    assert clean_text(styled) == styled
    assert clean_text("\x01ACTION waves\x01") == "\x01ACTION waves\x01"
    assert clean_text("PRIVMSG #a :\x01ACTION waves\x01", lines=True) == \
        "PRIVMSG #a :\x01ACTION waves\x01"
    assert clean_text("\x01VERSION\x01") == " VERSION "
    assert clean_text("\x01DCC SEND x 1 2 3\x01") == " DCC SEND x 1 2 3 "


@given(st.text())
def test_cleaning_never_lengthens_and_is_idempotent(text: str) -> None:
    """A cleaned text is no longer (in UTF-8) than the original, and clean again."""
    try:
        cleaned = clean_text(text)
    except TextRefused:
        assert any(c in text for c in "\r\n\0")
        return
    assert len(cleaned.encode()) <= len(text.encode())
    assert clean_text(cleaned) == cleaned
    assert line_needs_cleaning(text.encode()) or cleaned == text


def test_fit_utf8_never_cuts_a_character() -> None:
    """Cutting to a byte budget keeps whole characters."""
    assert fit_utf8("é" * 10, 5) == "éé"
    assert fit_utf8("abc", 10) == "abc"


async def test_http_controls_reach_irc_and_pollers_alike(make_server: MakeServer) -> None:
    """Controls in HTTP text reach IRC members and pollers as the same spaces."""
    app = await make_server()
    alice = await new_session(app.http_port, "alice", "ctl")
    bob = await Irc.connect(app.irc_port, "bob")
    await bob.send("JOIN #ctl")
    await bob.expect(" 366 ")
    text = "a\x0bb\x0cc\x85d\u2028e\u2029f\x1b[31mg\x01VERSION\x01"
    resp = await call(app.http_port, "POST", "/api/rooms/ctl/messages", token=alice,
                      body={"text": text})
    assert resp.status == 201
    line = await bob.expect("PRIVMSG #ctl")
    assert line.endswith(":a b c d e f [31mg VERSION ")
    assert "\x01" not in line and "\x1b" not in line
    events = (await call(app.http_port, "GET", "/api/rooms/ctl/messages", token=alice)).json()
    assert events["events"][-1]["text"] == "a b c d e f [31mg VERSION "


async def test_irc_bare_cr_and_escape_reach_pollers_as_spaces(make_server: MakeServer) -> None:
    """A bare CR or an ESC inside an IRC line is a space for pollers too; /me stays /me."""
    app = await make_server()
    alice = await new_session(app.http_port, "alice", "ctl")
    bob = await Irc.connect(app.irc_port, "bob")
    await bob.send("JOIN #ctl")
    await bob.expect(" 366 ")
    bob.writer.write(b"PRIVMSG #ctl :one\rtwo\x1b[2Jthree\r\n"
                     b"PRIVMSG #ctl :\x01ACTION waves\x01\r\n")
    await bob.send("PING :done")
    await bob.expect("PONG", "done")
    events = (await call(app.http_port, "GET", "/api/rooms/ctl/messages", token=alice)).json()
    texts = [e["text"] for e in events["events"] if e["kind"] == "message"]
    assert texts == ["one two [2Jthree", "\x01ACTION waves\x01"]


async def test_long_http_part_and_quit_reasons_fit_an_irc_line(make_server: MakeServer) -> None:
    """16,000-byte part and quit reasons from HTTP are cut to fit one 512-byte IRC line."""
    app = await make_server()
    alice = await new_session(app.http_port, "alice", "long", "long2")
    bob = await Irc.connect(app.irc_port, "bob")
    await bob.send("JOIN #long", "JOIN #long2")
    await bob.expect(" 366 ", "#long2")
    resp = await call(app.http_port, "POST", "/api/rooms/long/part", token=alice,
                      body={"reason": "p" * 16000})
    assert resp.status == 204
    part = await bob.expect("PART #long")
    assert len(part.encode()) + 2 <= 512 and part.endswith("ppp")
    resp = await call(app.http_port, "DELETE", "/api/sessions/me", token=alice,
                      body={"reason": "q" * 16000})
    assert resp.status == 204
    quit_line = await bob.expect(" QUIT ")
    assert len(quit_line.encode()) + 2 <= 512 and quit_line.endswith("qqq")


async def test_long_topic_fits_an_irc_line(make_server: MakeServer) -> None:
    """A topic of multi-byte characters is cut to fit the TOPIC line in bytes."""
    app = await make_server()
    alice = await new_session(app.http_port, "alice", "top")
    bob = await Irc.connect(app.irc_port, "bob")
    await bob.send("JOIN #top")
    await bob.expect(" 366 ")
    resp = await call(app.http_port, "POST", "/api/rooms/top/topic", token=alice,
                      body={"topic": "€" * 390})
    assert resp.status == 200
    line = await bob.expect(" TOPIC #top")
    assert len(line.encode()) + 2 <= 512
