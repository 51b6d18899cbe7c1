"""Pure tests of the hub: no loop, no sockets, a fake clock passed as ``now``."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chat.core.hub import (
    CannotSend,
    ChannelInvalid,
    Event,
    EventLog,
    Hub,
    NickInUse,
    NickInvalid,
    NoSuchChannel,
    NoSuchNick,
    NotChanOp,
    TooManyChannels,
    User,
)
from chat.core.names import casefold, room_to_channel, valid_channel, valid_nick


class Box:
    """A sink that records what it is pushed."""

    def __init__(self) -> None:
        self.got: list[Event] = []

    def deliver(self, event: Event, cache: dict[object, bytes]) -> None:
        self.got.append(event)

    def dropped(self, reason: str) -> None:
        self.got.append(Event("", 0, 0.0, "dropped", "", "", reason))


def user(hub: Hub, nick: str, box: Box | None = None, now: float = 0.0) -> User:
    return hub.register(nick, nick.lower(), "127.0.0.1", nick, "irc" if box else "http",
                        box, now)


def test_casefold_uses_rfc1459() -> None:
    """Brackets, backslash and tilde fold like letters under rfc1459."""
    assert casefold("Nick[]\\~") == "nick{}|^"
    folded = "".join(["ni", "ck"])  # a string made at run time, as a parsed nick is
    assert casefold(folded) is folded  # already folded: no second copy for its key


def test_nick_and_channel_rules() -> None:
    """Nicks start with a letter or special and fit NICKLEN; channels start with '#'."""
    assert valid_nick("alice", 30) and valid_nick("[bot]_2", 30)
    assert not valid_nick("9lives", 30) and not valid_nick("a" * 31, 30)
    assert not valid_nick("a b", 30) and not valid_nick("", 30)
    assert valid_channel("#lobby", 64) and not valid_channel("lobby", 64)
    assert not valid_channel("#a,b", 64) and not valid_channel("#", 64)
    assert room_to_channel("dev-ops_1") == "#dev-ops_1" and room_to_channel("a b") is None


def test_register_rejects_taken_and_invalid_nicks() -> None:
    """A nick is taken case-insensitively; an illegal nick is refused."""
    hub = Hub()
    user(hub, "Alice")
    with pytest.raises(NickInUse):
        user(hub, "aLICE")
    with pytest.raises(NickInvalid):
        user(hub, "-x")


def test_message_reaches_members_but_not_sender() -> None:
    """A room message is pushed to every other member once and stored with an id."""
    hub = Hub()
    a, b, c = Box(), Box(), Box()
    alice, bob = user(hub, "alice", a), user(hub, "bob", b)
    user(hub, "carol", c)
    hub.join(alice, "#lobby", 1.0)
    hub.join(bob, "#lobby", 2.0)
    event = hub.say(alice, "#lobby", "hi", 3.0)
    assert [e.text for e in b.got if e.kind == "message"] == ["hi"]
    assert not [e for e in a.got if e.kind == "message"] and c.got == []
    assert event.ts == 3.0 and event.target == "#lobby"
    room = hub.find_room("#LOBBY")
    assert room is not None and room.log.events[-1] is event


def test_ids_strictly_increase_per_room_and_survive_recreation() -> None:
    """Ids grow in every room, even after the room empties and is created again."""
    hub = Hub()
    alice = user(hub, "alice", Box())
    _, first = hub.join(alice, "#a", 0)
    msg = hub.say(alice, "#a", "x", 0)
    part = hub.part(alice, "#a", "bye", 0)
    assert hub.find_room("#a") is None
    _, again = hub.join(alice, "#a", 0)
    assert first is not None and again is not None
    assert first.id < msg.id < part.id < again.id


def test_gap_only_for_stale_cursor_of_recreated_room() -> None:
    """A new room has no gap from 0; a room emptied and recreated reports a gap to old cursors."""
    hub = Hub()
    alice = user(hub, "alice", Box())
    room, _ = hub.join(alice, "#new", 0)
    assert room.log.since(0, 10)[2] is False
    hub.say(alice, "#new", "one", 0)
    old_cursor = room.log.last_id - 1
    hub.part(alice, "#new", "", 0)
    again, _ = hub.join(alice, "#new", 0)
    assert again.log.since(old_cursor, 10)[2] is True
    assert again.log.since(again.log.last_id - 1, 10)[2] is False


def test_quit_is_told_once_to_each_co_member() -> None:
    """A user in two shared rooms quits: each co-member is pushed one QUIT, each room logs one."""
    hub = Hub()
    a, b = Box(), Box()
    alice, bob = user(hub, "alice", a), user(hub, "bob", b)
    for chan in ("#x", "#y"):
        hub.join(alice, chan, 0)
        hub.join(bob, chan, 0)
    events = hub.quit(alice, "gone", 1)
    assert len(events) == 2 and {e.target for e in events} == {"#x", "#y"}
    assert [e.kind for e in b.got].count("quit") == 1
    assert hub.find_user("alice") is None and hub.nick_available("ALICE")
    assert hub.quit(alice, "again", 2) == []


def test_rename_moves_membership_ops_and_tells_co_members() -> None:
    """A nick change keeps rooms and operator status and is told once per co-member."""
    hub = Hub()
    b = Box()
    alice, bob = user(hub, "alice", Box()), user(hub, "bob", b)
    hub.join(alice, "#x", 0)
    hub.join(bob, "#x", 0)
    hub.rename(alice, "Alicia", 1)
    room = hub.find_room("#x")
    assert room is not None and room.is_op(alice) and "alicia" in room.members
    assert [(e.kind, e.nick, e.text) for e in b.got][-1] == ("nick", "alice", "Alicia")
    with pytest.raises(NickInUse):
        hub.rename(alice, "BOB", 2)
    hub.rename(alice, "ALICIA", 3)  # a case-only change of one's own nick is allowed
    assert alice.nick == "ALICIA"


def test_errors_for_channels() -> None:
    """Unknown rooms, non-members, bad names, +t and CHANLIMIT raise their own errors."""
    hub = Hub(max_channels=1)
    alice, bob = user(hub, "alice", Box()), user(hub, "bob", Box())
    with pytest.raises(NoSuchChannel):
        hub.say(alice, "#none", "x", 0)
    hub.join(alice, "#x", 0)
    with pytest.raises(CannotSend):  # not a member: +n
        hub.say(bob, "#x", "x", 0)
    with pytest.raises(ChannelInvalid):
        hub.join(bob, "nochan", 0)
    hub.join(bob, "#x", 0)
    with pytest.raises(NotChanOp):
        hub.set_topic(bob, "#x", "mine", 0)
    with pytest.raises(TooManyChannels):
        hub.join(alice, "#y", 0)
    assert hub.set_topic(alice, "#x", "ours", 0).text == "ours"


def test_private_message_goes_to_sink_or_inbox() -> None:
    """IRC users are pushed private messages; pollers find them in their inbox log."""
    hub = Hub()
    b = Box()
    alice, bob = user(hub, "alice", Box()), user(hub, "bob", b)
    poller = user(hub, "pat")
    hub.tell(alice, "BOB", "psst", 0)
    hub.tell(alice, "pat", "hey", 0)
    assert [e.text for e in b.got] == ["psst"]
    assert [e.text for e in poller.inbox.events] == ["hey"]
    assert list(bob.inbox.events) == []  # pushed users keep no inbox
    with pytest.raises(NoSuchNick):
        hub.tell(alice, "nobody", "x", 0)


def _log_with(n: int, maxlen: int) -> EventLog:
    log = EventLog(maxlen, 0)
    for i in range(1, n + 1):
        log.append(Event("#r", i * 2, 0.0, "message", "a", "a@h", str(i)), {})
    return log


def test_since_reports_gap_only_after_eviction() -> None:
    """Reading after an evicted id says gap; reading within history does not."""
    log = _log_with(10, 5)  # ids 2..20, keeps 12..20
    events, nxt, gap = log.since(4, 100)
    assert gap and [e.id for e in events] == [12, 14, 16, 18, 20] and nxt == 20
    events, nxt, gap = log.since(12, 2)
    assert not gap and [e.id for e in events] == [14, 16] and nxt == 16
    assert log.since(20, 10) == ([], 20, False)
    assert log.since(99, 10) == ([], 20, True)  # a cursor from a previous server run
    latest, nxt, gap = log.since(None, 2)
    assert [e.id for e in latest] == [18, 20] and nxt == 20 and not gap


@given(n=st.integers(0, 40), maxlen=st.integers(1, 20), since=st.integers(0, 90),
       limit=st.integers(1, 50))
def test_since_never_skips_silently(n: int, maxlen: int, since: int, limit: int) -> None:
    """Whatever the cursor, the answer is the kept events after it in order, or a gap."""
    log = _log_with(n, maxlen)
    events, nxt, gap = log.since(since, limit)
    kept = [e.id for e in log.events if e.id > since]
    assert [e.id for e in events] == kept[:limit]
    all_after = [i * 2 for i in range(1, n + 1) if i * 2 > since]
    if not gap:
        assert all_after[: len(events)] == [e.id for e in events]
    assert nxt >= min(since, log.last_id)


def test_watchers_fire_once_on_next_append() -> None:
    """A watcher fires on the next append only; an unwatched one never fires."""
    log = EventLog(10, 0)
    fired: list[int] = []
    log.watch(lambda e, c: fired.append(e.id))
    removed = fired.append
    log.watch(lambda e, c: removed(-1))
    log.unwatch(log.watchers[-1])
    log.append(Event("#r", 1, 0, "message", "a", "a@h", "x"), {})
    log.append(Event("#r", 2, 0, "message", "a", "a@h", "y"), {})
    assert fired == [1]
