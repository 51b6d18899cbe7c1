"""WebSocket users in channels run by IRC operators: keys, kicks, modes, typing notices."""

from __future__ import annotations

from ..conftest import MakeServer
from ..http.util import Irc, new_session
from .util import next_event, open_ws, request


async def test_websocket_user_under_channel_modes(make_server: MakeServer) -> None:
    """A WebSocket user joins a +k room with its key, sees MODE and KICK as events, sends
    and gets typing notices and client tags."""
    app = await make_server(presence_interval=0)
    op = await Irc.connect(app.irc_port, "op", caps="message-tags")
    await op.send("JOIN #lab", "MODE #lab +k sesame")
    await op.expect("MODE #lab +k sesame")
    ws = await open_ws(app.http_port, await new_session(app.http_port, "web"))
    refused = (await request(ws, {"type": "join", "room": "lab"}))[-1]
    assert (refused["type"], refused["error"]) == ("error", "bad_key")
    joined = (await request(ws, {"type": "join", "room": "lab", "key": "sesame"}))[-1]
    assert joined["type"] == "joined"
    typed = (await request(ws, {"type": "typing", "room": "lab", "state": "active"}))[-1]
    assert typed["op"] == "typing"
    assert (await op.expect("TAGMSG #lab")).startswith("@+typing=active;msgid=")
    await op.send("@+typing=paused TAGMSG #lab")
    assert (await next_event(ws, "tagmsg"))["tags"] == {"+typing": "paused"}
    said = await request(ws, {"type": "say", "room": "lab", "text": "re",
                              "tags": {"+draft/reply": "1"}})
    assert said[-1]["op"] == "say"
    assert (await op.expect("PRIVMSG #lab :re")).startswith("@+draft/reply=1;msgid=")
    await op.send("MODE #lab +v web")
    assert (await next_event(ws, "mode"))["args"] == ["web"]
    await op.send("KICK #lab web :bye")
    kick = await next_event(ws, "kick")
    assert (kick["target"], kick["text"]) == ("web", "bye")
    refused = (await request(ws, {"type": "say", "room": "lab", "text": "still?"}))[-1]
    assert refused["error"] == "not_joined"
