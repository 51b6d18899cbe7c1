"""Pure tests of irc mode's resume bookkeeping (:class:`chat.client.ircresume.Resume`)."""

from __future__ import annotations

from chat.client.base import Transport
from chat.client.ircresume import Resume
from chat.client.model import ChatEvent


def _setup(rooms: dict[str, int | None]) -> tuple[Resume, list[ChatEvent], list[str],
                                                   list[tuple[str, ...]]]:
    events: list[ChatEvent] = []
    notices: list[str] = []
    sent: list[tuple[str, ...]] = []
    owner = Transport(host="h", irc_port=1, http_port=2, nick="me", on_event=events.append,
                      on_notice=notices.append)
    owner.preset(rooms, {room: last for room, last in rooms.items() if last is not None})
    return Resume(owner, lambda *line: sent.append(line)), events, notices, sent


def _event(event_id: int, room: str = "lobby", kind: str = "message",
           text: str = "") -> ChatEvent:
    return ChatEvent(room=room, id=event_id, ts=0.0, kind=kind, nick="bob",
                     text=text or f"m{event_id}", received=0.0)


def _history(resume: Resume, ref: str, room: str, events: list[ChatEvent],
             kind: str = "chathistory") -> None:
    """The server sends history batch ``ref`` for ``room`` holding ``events``."""
    resume.receive_batch("+" + ref, kind, "#" + room)
    batch = resume.batch(ref)
    assert batch is not None and batch[0] == room
    batch[1].extend(events)
    resume.receive_batch("-" + ref, "", "")


def test_replay_and_held_live_events_merge_once_in_order() -> None:
    """Live events held during the replay and the replayed ones are shown once, by id."""
    resume, events, _, sent = _setup({"lobby": 5})
    resume.begin(history=True)
    assert sent == [("JOIN", "#lobby")]
    resume.receive_own_join("lobby", 9)
    assert sent[-1] == ("CHATHISTORY", "AFTER", "#lobby", "msgid=5", "100")
    resume.receive_live(_event(8))             # arrives before the replay is in
    resume.receive_batch("+b1", "chathistory", "#lobby")
    batch = resume.batch("b1")
    assert batch is not None and batch[0] == "lobby"
    batch[1].extend([_event(6), _event(7), _event(8)])
    assert events == []
    resume.receive_batch("-b1", "", "")
    assert [e.id for e in events] == [6, 7, 8]
    resume.receive_live(_event(9))
    assert [e.id for e in events] == [6, 7, 8, 9]


def test_full_page_asks_for_the_next_one() -> None:
    """A batch as long as the history limit asks for more after its last id."""
    resume, events, _, sent = _setup({"lobby": 1})
    resume.receive_isupport(["CHATHISTORY=2"])
    resume.begin(history=True)
    resume.receive_own_join("lobby", 10)
    _history(resume, "a", "lobby", [_event(2), _event(3)], kind="draft/chathistory")
    assert sent[-1] == ("CHATHISTORY", "AFTER", "#lobby", "msgid=3", "2")
    assert events == []


def test_ids_going_backwards_replay_from_the_start() -> None:
    """A JOIN id not above the cursor means a new server run: LATEST, and a notice."""
    resume, _, notices, sent = _setup({"lobby": 50})
    resume.begin(history=True)
    resume.receive_own_join("lobby", 3)
    assert sent[-1] == ("CHATHISTORY", "LATEST", "#lobby", "*", "100")
    assert any("restarted" in n for n in notices)


def test_without_history_the_loss_is_announced() -> None:
    """A server without chathistory: the room resumes live and the user is told."""
    resume, events, notices, sent = _setup({"lobby": 5})
    resume.begin(history=False)
    resume.receive_live(_event(7))
    resume.receive_own_join("lobby", 9)
    assert [e.id for e in events] == [7]
    assert sent == [("JOIN", "#lobby")] and any("no history" in n for n in notices)


def test_roomless_event_shown_live_is_not_shown_again_from_the_replay() -> None:
    """A QUIT shown live is recognised in a room's replay and only moves the cursor."""
    resume, events, _, _ = _setup({"lobby": 5})
    quit_ = _event(6, room="", kind="quit", text="bye")
    resume.receive_live(quit_)
    resume.begin(history=True)
    resume.receive_own_join("lobby", 9)
    _history(resume, "q", "lobby", [_event(6, kind="quit", text="bye")])
    assert events == [quit_]
