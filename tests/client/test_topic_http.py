"""/topic and /who operators in the HTTP modes (and ws, whose session is an HTTP one).

These need the server's topic route (``POST /api/rooms/{room}/topic`` with ``{"topic"}``,
answering ``{"room", "topic", "by"}``, or 403 ``not_chanop`` under +t) and the ``op`` flag in
``GET /api/rooms/{room}/members``; they fail until the server has both.
"""

from __future__ import annotations

import pytest

from chat.client.model import TransportError

from ..conftest import MakeServer
from .conftest import MakeClient, wait_until

HTTP_MODES = ["ws", "sse", "longpoll", "poll", "poll-close"]  # ws: set by frame, read by GET


@pytest.mark.parametrize("mode", HTTP_MODES)
async def test_http_topic_and_operators(make_server: MakeServer, make_client: MakeClient,
                                        mode: str) -> None:
    """A room made by an HTTP user gets a topic; a non-operator is refused; /who marks ops."""
    app = await make_server(flood_burst=0)
    op, op_got = await make_client(app, mode, "alice")       # made the room: operator
    other, other_got = await make_client(app, mode, "bob")
    irc, irc_got = await make_client(app, "irc", "carol")
    assert await op.topic("lobby") == ""
    assert await op.topic("lobby", "made over HTTP") == "made over HTTP"
    for got in (op_got, other_got, irc_got):
        await wait_until(lambda got=got: got.texts(kind="topic") == ["made over HTTP"],
                         what="the topic event everywhere")
    assert await other.topic("lobby") == "made over HTTP"
    assert await irc.topic("lobby") == "made over HTTP"
    with pytest.raises(TransportError, match="operator"):
        await other.topic("lobby", "mine now")
    members = {m.nick: m.op for m in await other.who("lobby")}
    assert members == {"alice": True, "bob": False, "carol": False}
