"""Replays of what irssi 1.4.3 and weechat 3.8 sent in the tmux trials, over a real socket.

Each step is the lines a client sent together and the reply it then waited for before
sending more, as captured by a logging relay.  irssi's channel sync (MODE, WHO, MODE b)
takes about 7.5 s on any server, ChatLab and InspIRCd alike, because irssi paces queued
commands itself (``cmd_queue_speed``, 2.2 s; ``/set cmd_queue_speed 0`` gives 1.5 s).  These
tests pin the server's half: every query gets its terminating reply, there are no error
numerics, and the registration burst fits the default flood budget.  (Replayed here without
the clients' own pacing, later lines may be held a moment; in the trials none were.)
"""

from __future__ import annotations

import pytest

from chat.irc.message import parse
from tests.conftest import MakeServer
from tests.irc.conftest import Connect

Step = tuple[tuple[str, ...], str]

IRSSI: list[Step] = [
    # "JOIN :" is irssi's probe for servers without CAP: 451 is the expected answer.
    (("CAP LS 302", "JOIN :"), " 451 "),
    (("CAP REQ :multi-prefix server-time",), " ACK "),
    (("CAP END", "NICK alice", "USER root root 127.0.0.1 :root"), " 376 "),
    (("MODE alice +i",), " MODE alice "),
    (("JOIN #lobby",), " 366 "),
    (("MODE #lobby",), " 329 "),
    (("WHO #lobby",), " 315 "),
    (("MODE #lobby b",), " 368 "),
    (("PING chat.local",), " PONG "),
]

WEECHAT: list[Step] = [
    (("CAP LS 302", "NICK bob", "USER root 0 * :root"), " LS "),
    (("CAP REQ :message-tags server-time multi-prefix userhost-in-names",), " ACK "),
    (("CAP END",), " 376 "),
    (("JOIN #lobby",), " 366 "),
    (("MODE #lobby",), " 329 "),
    (("WHO #lobby",), " 315 "),          # irc.server.*.away_check
    (("PING 127.0.0.1",), " PONG "),     # lag check
    (("PART #lobby :see you",), " PART "),
]


@pytest.mark.parametrize("steps", [IRSSI, WEECHAT], ids=["irssi", "weechat"])
async def test_captured_client_exchange(make_server: MakeServer, irc: Connect,
                                        steps: list[Step]) -> None:
    """A real client's connect, join and sync lines: each answered, no errors."""
    app = await make_server(flood_rate=50.0)  # the default burst; a quick refill for the replay
    client = await irc(app)
    replies: list[str] = []
    for lines, answer in steps:
        client.send(*lines)
        replies += await client.lines_until(answer)
        if answer == " 376 ":
            assert app.stats.irc.lines_delayed == 0  # registration is never held
    errors = [parse(line).command for line in replies if parse(line).command[0] in "45"]
    assert errors == (["451"] if steps is IRSSI else [])  # only irssi's "JOIN :" probe
