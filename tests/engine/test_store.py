"""Pure tests of what the Redis engine stores and sends: Ops, events, claims, snapshots."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from chat.core.hub import Hub, Op, op_events, op_from_list
from chat.core.snapshot import restore, snapshot
from chat.engine import store


class Box:
    def __init__(self) -> None:
        self.got: list[str] = []

    def deliver(self, event: object, cache: object) -> None:
        self.got.append(repr(event))

    def offer(self, event: object, cache: object) -> None:
        self.got.append("offered " + repr(event))

    def dropped(self, reason: str) -> None:
        self.got.append("dropped " + reason)


texts = st.text(max_size=20)


@given(st.sampled_from(["join", "part", "message", "quit", "rename", "tell"]), texts, texts,
       texts, st.floats(0, 2e9), st.lists(texts, max_size=3), st.integers(0, 5))
def test_ops_survive_serialization(kind: str, actor: str, target: str, text: str, ts: float,
                                   args: list[str], ids: int) -> None:
    """An Op sent through Redis comes back equal."""
    op = Op(kind, actor, target, text, ts, "u@h", tuple(args), ids)
    assert op_from_list(__import__("orjson").loads(store.op_json(op))) == op


def test_events_are_a_function_of_the_op() -> None:
    """A quit is one event per room named, numbered from the first id; a tell one private."""
    quit_op = Op("quit", "ann", "", "bye", 5.0, "a@h", ("#a", "#b"), ids=2)
    events = op_events(quit_op, 10)
    assert [(e.target, e.id, e.kind, e.text) for e in events] == \
        [("#a", 10, "quit", "bye"), ("#b", 11, "quit", "bye")]
    tell = op_events(Op("tell", "ann", "bob", "psst", 1.0, "a@h", ("notice",)), 3)
    assert [(e.target, e.kind, e.userhost) for e in tell] == [("bob", "notice", "a@h")]
    assert op_events(Op("away", "ann", "", "", 1.0, ids=0), 1) == []


def test_nick_claims() -> None:
    """register claims, quit releases, rename claims the new and releases the old nick;
    a case-only rename changes no claim."""
    assert store.claims(Op("register", "Ann", "", "", 0.0, ids=0), "n1") == ("ann", "")
    assert store.claims(Op("quit", "Ann", "", "", 0.0), "n1") == ("", "ann")
    assert store.claims(Op("rename", "Ann", "Bea", "", 0.0), "n1") == ("bea", "ann")
    assert store.claims(Op("rename", "Ann", "ANN", "", 0.0), "n1") == ("", "")
    assert store.claims(Op("message", "Ann", "#a", "x", 0.0), "n1") == ("", "")


def test_history_entries_keep_room_events_and_http_inboxes() -> None:
    """Room events go to the room's history; private ones only to an HTTP user's inbox."""
    hub = Hub()
    ann = hub.register("ann", "ann", "http", "ann", "http", None, 0.0)
    hub.register("ircy", "i", "h", "i", "irc", Box(), 0.0)
    hub.join(ann, "#Room", 0.0)
    say = hub.propose_say(ann, "#Room", "hi", 1.0)
    entries = store.history_entries(hub, say)
    assert entries[:2] == ["h:#room", "0"]
    event = store.loaded_event("7", entries[2])
    assert (event.id, event.target, event.kind, event.text) == (7, "#Room", "message", "hi")
    assert store.history_entries(hub, hub.propose_tell(ann, "ircy", "x", 1.0)) == []
    assert store.history_entries(hub, hub.propose_tell(ann, "ann", "x", 1.0))[0] == "i:ann"


def test_snapshot_restores_presence() -> None:
    """A hub rebuilt from a snapshot has the same users, rooms, members, ops and topics."""
    hub = Hub()
    ann = hub.register("ann", "a", "h1", "Ann", "irc", Box(), 1.0)
    bob = hub.register("bob", "bob", "http", "bob", "http", None, 2.0)
    hub.tokens["hash"] = bob.key
    hub.join(ann, "#x", 3.0)
    hub.join(bob, "#x", 3.0)
    hub.set_topic(ann, "#x", "the topic", 4.0)
    hub.set_away(bob, "lunch", 5.0)
    copy = Hub()
    restore(copy, snapshot(hub))
    room = copy.find_room("#x")
    assert room is not None and list(room.members) == ["ann", "bob"]
    assert room.ops == {"ann"} and room.topic == "the topic"
    assert copy.find_user("bob").away == "lunch"  # type: ignore[union-attr]
    assert copy.user_of_token("hash") is copy.find_user("bob")
    assert copy.seq == hub.seq
    assert copy.find_user("ann").sink is None  # connections are not in a snapshot


def test_stream_ids_order_numerically() -> None:
    """Log positions compare as numbers, not strings."""
    assert store.stream_key("10-2") > store.stream_key("9-99")
    assert store.stream_key("5-10") > store.stream_key("5-9")
