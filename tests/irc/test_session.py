"""Pure tests of the IRC session state machine: a hub and sessions in memory, no sockets."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chat.config import Config
from chat.core.clock import Now
from chat.core.heartbeat import Heartbeat, HeartbeatPolicy
from chat.core.stats import TransportStats
from chat.engine.memory import MemoryEngine
from chat.irc.caps import ServerInfo
from chat.irc.commands import receive
from chat.irc.message import parse
from chat.irc.session import Session, State
from tests.engines import DeferredEngine

NOW = 1_700_000_000.0


class World:
    """One hub with any number of in-memory sessions."""

    def __init__(self, engine: type[MemoryEngine] = MemoryEngine, **overrides: Any) -> None:
        self.config = Config(**overrides)
        cfg = self.config
        self.engine = engine(history=cfg.history, nicklen=cfg.nicklen,
                             channellen=cfg.channellen, topiclen=cfg.topiclen,
                             max_channels=cfg.max_channels)
        self.hub = self.engine.hub
        self.stats = TransportStats()
        self.info = ServerInfo(cfg, NOW)
        self.session_class = Session.of_server(self.engine, self.info, self.stats, cfg.sendq)
        self.policy = HeartbeatPolicy(cfg.registration_timeout, cfg.ping_interval,
                                      cfg.ping_timeout, cfg.idle_timeout)

    def client(self, nick: str | None = None, caps: str = "") -> Client:
        client = Client(self)
        if nick is not None:
            if caps:
                client.send("CAP LS 302", f"CAP REQ :{caps}")
            client.send(f"NICK {nick}", f"USER {nick} 0 * :Real {nick}")
            if caps:
                client.send("CAP END")
            if isinstance(self.engine, DeferredEngine):
                self.engine.settle()
            assert client.session.state is State.REGISTERED
            client.take()
        return client


class Client:
    def __init__(self, world: World) -> None:
        self.wakeups = 0
        self.session = world.session_class("10.0.0.1", Heartbeat(world.policy, NOW), self)

    # --- the session's Owner (what the adapter is for a real connection) -------------------
    def wakeup(self) -> None:
        self.wakeups += 1

    def lazy_wakeup(self) -> None:
        self.wakeup()

    def resume(self) -> None:
        pass

    def dropped(self, reason: str) -> None:
        # As the adapter does: a user the hub dropped (a KILL) ends its session.
        self.session.end(reason, NOW)

    def send(self, *lines: str, now: float = NOW) -> list[str]:
        for line in lines:
            receive(self.session, line.encode(), Now(now, now))
        return self.take()

    def take(self) -> list[str]:
        return [b.decode().rstrip("\r\n") for b in self.session.take_pending()]


def codes(lines: list[str]) -> list[str]:
    return [parse(line).command for line in lines]


def test_registration_burst() -> None:
    """NICK+USER give 001-005 (with the advertised tokens), LUSERS and the MOTD."""
    c = World().client()
    out = c.send("NICK alice", "USER al 0 * :Alice Liddell")
    got = codes(out)
    assert got[:5] == ["001", "002", "003", "004", "005"]
    assert got[-1] == "376" and "375" in got and "372" in got
    isupport = " ".join(line for line in out if " 005 " in line)
    for token in ("CHANTYPES=#", "NICKLEN=30", "CHANNELLEN=64", "CASEMAPPING=rfc1459",
                  "NETWORK=ChatLab", "CHATHISTORY=", "PREFIX=(ov)@+", "CHANLIMIT=#:50",
                  "CHANMODES=b,k,l,imnst", "KEYLEN=32", "MODES=6", "MAXLIST=b:100",
                  "ELIST=CMNTU", "WHOX", "KICKLEN=255", "NAMELEN=150"):
        assert token in isupport
    assert "alice!al@10.0.0.1" in out[0]
    assert c.session.state is State.REGISTERED


def test_empty_motd_gives_422() -> None:
    """With no MOTD configured the burst ends with 422."""
    c = World(motd="").client()
    assert codes(c.send("NICK a", "USER a 0 * :a"))[-1] == "422"


def test_cap_negotiation_holds_registration_until_end() -> None:
    """CAP LS suspends registration; REQ is ACKed or NAKed whole; LIST; END registers."""
    c = World().client()
    out = c.send("CAP LS 302", "NICK bob", "USER b 0 * :Bob")
    assert out == [":chat.local CAP * LS :message-tags server-time echo-message batch "
                   "draft/chathistory draft/event-playback multi-prefix userhost-in-names "
                   "away-notify extended-join chghost setname cap-notify labeled-response "
                   "standard-replies invite-notify"]
    assert c.send("CAP REQ :server-time bogus") == [":chat.local CAP bob NAK :server-time bogus"]
    assert c.send("CAP REQ :server-time echo-message") == [
        ":chat.local CAP bob ACK :server-time echo-message"]
    assert c.send("CAP REQ :-echo-message") == [":chat.local CAP bob ACK :-echo-message"]
    assert c.send("CAP LIST") == [":chat.local CAP bob LIST :server-time"]
    assert c.session.state is State.REGISTERING
    assert codes(c.send("CAP END"))[0] == "001"


def test_pass_accepted_and_refused() -> None:
    """With --password, the right PASS registers and a wrong one gets 464 and ERROR."""
    world = World(password="s3cret")
    good = world.client()
    assert codes(good.send("PASS s3cret", "NICK a", "USER a 0 * :a"))[0] == "001"
    bad = world.client()
    out = bad.send("PASS nope", "NICK b", "USER b 0 * :b")
    assert codes(out) == ["464", "ERROR"]
    assert out[-1] == "ERROR :Closing Link: Bad password"
    assert bad.session.state is State.CLOSED
    assert world.hub.find_user("b") is None


NUMERIC_CASES = [
    ("PRIVMSG ghost :hi", "401"),
    ("JOIN lobby", "403"),
    ("PART #nowhere", "403"),
    ("PRIVMSG #nowhere :hi", "403"),
    ("TOPIC #nowhere", "403"),
    ("MODE #nowhere", "403"),
    ("PRIVMSG #busy :hi", "404"),
    ("PRIVMSG", "411"),
    ("PRIVMSG bob", "412"),
    ("PRIVMSG bob :", "412"),
    ("FROB x", "421"),
    ("NICK", "431"),
    ("NICK :", "431"),
    ("WHOIS", "431"),
    ("NICK 9lives", "432"),
    ("NICK bob", "433"),
    ("NICK BOB", "433"),
    ("PART #busy", "442"),
    ("TOPIC #busy :new", "442"),
    ("JOIN", "461"),
    ("PART", "461"),
    ("TOPIC", "461"),
    ("MODE", "461"),
    ("USERHOST", "461"),
    ("ISON", "461"),
    ("CAP", "461"),
    ("CHATHISTORY", "461"),
    ("USER x 0 * :x", "462"),
    ("PASS again", "462"),
    ("PRIVMSG a,b,c,d,e :hi", "407"),
    ("PING", "409"),
    ("CAP FROB", "410"),
    ("MODE #busy +k key", "482"),
    ("MODE bob +i", "502"),
    ("MODE alice +x", "501"),
]


@pytest.mark.parametrize(("line", "numeric"), NUMERIC_CASES)
def test_error_numerics(line: str, numeric: str) -> None:
    """Each bad command gets its error numeric, addressed to the client."""
    world = World()
    bob = world.client("bob")
    bob.send("JOIN #busy")
    alice = world.client("alice")
    out = alice.send(line)
    assert codes(out) == [numeric]
    assert out[0].startswith(f":chat.local {numeric} alice ")
    assert world.stats.errors[numeric] >= 1


def test_451_before_registration_and_417() -> None:
    """Commands needing registration get 451 before it; an over-long line gets 417."""
    c = World().client()
    assert codes(c.send("JOIN #a", "PRIVMSG #a :x")) == ["451", "451"]
    c.session.line_too_long()
    assert codes(c.take()) == ["417"]


def test_too_many_channels_405() -> None:
    """Joining past CHANLIMIT gets 405."""
    c = World(max_channels=1).client("a")
    assert codes(c.send("JOIN #one,#two"))[-1] == "405"


def test_notice_never_gets_an_error() -> None:
    """NOTICE to nowhere is silently dropped (RFC 2812 3.3.2)."""
    c = World().client("a")
    assert c.send("NOTICE ghost :x", "NOTICE #nowhere :x", "NOTICE", "NOTICE a") == []


def test_join_echo_topic_and_names() -> None:
    """JOIN echoes, then 332/333 if a topic is set, then 353/366 with the op marked."""
    world = World()
    alice, bob = world.client("alice"), world.client("bob")
    alice.send("JOIN #x", "TOPIC #x :the topic")
    out = bob.send("JOIN #x,#y")
    assert codes(out) == ["JOIN", "332", "333", "353", "366", "JOIN", "353", "366"]
    assert out[0] == ":bob!bob@10.0.0.1 JOIN #x"
    assert out[3].endswith("= #x :@alice bob")
    assert alice.take() == [":bob!bob@10.0.0.1 JOIN #x"]


def test_two_users_chat_and_quit() -> None:
    """Messages reach the other member only; QUIT reaches co-members once."""
    world = World()
    alice, bob = world.client("alice"), world.client("bob")
    alice.send("JOIN #a,#b")
    bob.send("JOIN #a,#b")
    alice.take()
    assert bob.send("PRIVMSG #a :hello") == []  # no echo without echo-message
    assert alice.take() == [":bob!bob@10.0.0.1 PRIVMSG #a :hello"]
    bob.send("PRIVMSG alice :psst")
    assert alice.take() == [":bob!bob@10.0.0.1 PRIVMSG alice :psst"]
    out = bob.send("QUIT :gone")
    assert out == ["ERROR :Closing Link: Quit: gone"]
    assert alice.take() == [":bob!bob@10.0.0.1 QUIT :Quit: gone"]
    assert world.hub.find_user("bob") is None


def test_echo_message_with_msgid_and_time() -> None:
    """echo-message returns the sender's own line with the same msgid the others got."""
    world = World()
    alice = world.client("alice", "message-tags server-time echo-message")
    bob = world.client("bob", "message-tags")
    alice.send("JOIN #a")
    bob.send("JOIN #a")
    alice.take()
    echo = alice.send("PRIVMSG #a :hi")
    assert len(echo) == 1
    msg = parse(echo[0])
    assert msg.tags is not None and msg.tags["time"].endswith("Z")
    got = parse(bob.take()[0])
    assert got.tags == {"msgid": msg.tags["msgid"]}
    assert int(msg.tags["msgid"]) == world.hub.find_room("#a").log.last_id  # type: ignore[union-attr]


def test_nick_change_seen_by_channel_and_echoed() -> None:
    """NICK after registration is echoed and seen once by a co-member."""
    world = World()
    alice, bob = world.client("alice"), world.client("bob")
    alice.send("JOIN #a,#b")
    bob.send("JOIN #a,#b")
    alice.take()
    assert bob.send("NICK robert") == [":bob!bob@10.0.0.1 NICK :robert"]
    assert alice.take() == [":bob!bob@10.0.0.1 NICK :robert"]
    assert world.hub.find_user("robert") is not None
    lonely = world.client("carol")
    assert lonely.send("NICK Carol") == [":carol!carol@10.0.0.1 NICK :Carol"]


def test_part_topic_and_ops() -> None:
    """PART echoes with its reason; only the channel operator sets the topic (482)."""
    world = World()
    alice, bob = world.client("alice"), world.client("bob")
    alice.send("JOIN #a")
    bob.send("JOIN #a")
    alice.take()
    assert codes(bob.send("TOPIC #a :mine")) == ["482"]
    assert alice.send("TOPIC #a :ours") == [":alice!alice@10.0.0.1 TOPIC #a :ours"]
    assert codes(bob.send("TOPIC #a")) == ["TOPIC", "332", "333"]
    assert bob.send("PART #a :bye") == [":bob!bob@10.0.0.1 PART #a :bye"]


def test_client_queries_real_clients_send() -> None:
    """MODE, WHO, WHOIS, USERHOST, ISON, AWAY, LIST, VERSION, TIME, LUSERS answer sanely."""
    world = World()
    alice, bob = world.client("alice"), world.client("bob")
    alice.send("JOIN #a")
    bob.send("JOIN #a")
    alice.take()
    assert codes(alice.send("MODE #a")) == ["324", "329"]
    assert codes(alice.send("MODE #a b")) == ["368"]
    assert codes(alice.send("MODE alice")) == ["221"]
    assert alice.send("MODE alice +i") == [":alice!alice@10.0.0.1 MODE alice +i"]
    assert codes(alice.send("WHO #a")) == ["352", "352", "315"]
    assert codes(alice.send("WHOIS bob")) == ["311", "319", "312", "317", "318"]
    assert codes(alice.send("WHOIS ghost")) == ["401", "318"]
    assert codes(alice.send("WHOWAS ghost")) == ["406", "369"]
    assert alice.send("USERHOST bob")[0].endswith(":bob=+bob@10.0.0.1")
    assert alice.send("ISON bob ghost ALICE")[0].endswith(":bob alice")
    assert codes(bob.send("AWAY :lunch")) == ["306"]
    assert codes(alice.send("PRIVMSG bob :hi")) == ["301"]
    assert bob.take() == [":alice!alice@10.0.0.1 PRIVMSG bob :hi"]
    assert codes(bob.send("AWAY")) == ["305"]
    assert codes(alice.send("LIST")) == ["321", "322", "323"]
    assert codes(alice.send("VERSION"))[0] == "351"
    assert codes(alice.send("TIME")) == ["391"]
    assert codes(alice.send("LUSERS")) == ["251", "254", "255", "265", "266"]
    assert codes(alice.send("MOTD"))[-1] == "376"
    assert codes(alice.send("NAMES #a", "NAMES")) == ["353", "366", "366"]
    assert alice.send("PING :tok") == [":chat.local PONG chat.local tok"]
    assert alice.send("TAGMSG #a") == []


def history_world() -> tuple[World, Client]:
    world = World()
    alice = world.client("alice", "message-tags server-time batch draft/chathistory")
    bob = world.client("bob")
    alice.send("JOIN #h")
    bob.send("JOIN #h")
    for i in range(5):
        bob.send(f"PRIVMSG #h :m{i}", now=NOW + i)
    alice.take()
    return world, alice


def ids(lines: list[str]) -> list[int]:
    return [int(parse(line).tags["msgid"]) for line in lines  # type: ignore[index]
            if parse(line).command == "PRIVMSG"]


def test_chathistory_subcommands() -> None:
    """LATEST/AFTER/BEFORE/AROUND/BETWEEN return the right messages, oldest first, batched."""
    world, alice = history_world()
    room = world.hub.find_room("#h")
    assert room is not None
    msg_ids = [e.id for e in room.log.events if e.kind == "message"]
    out = alice.send("CHATHISTORY LATEST #h * 3")
    assert parse(out[0]).params == ["+h1", "chathistory", "#h"] and out[-1].endswith("BATCH -h1")
    assert all(parse(line).tags.get("batch") == "h1" for line in out[1:-1])  # type: ignore[union-attr]
    assert ids(out) == msg_ids[-3:]
    assert ids(alice.send(f"CHATHISTORY AFTER #h msgid={msg_ids[1]} 2")) == msg_ids[2:4]
    assert ids(alice.send(f"CHATHISTORY BEFORE #h msgid={msg_ids[3]} 10")) == msg_ids[:3]
    assert ids(alice.send(f"CHATHISTORY LATEST #h msgid={msg_ids[2]} 10")) == msg_ids[3:]
    assert ids(alice.send(f"CHATHISTORY AROUND #h msgid={msg_ids[2]} 2")) == msg_ids[1:3]
    assert ids(alice.send(
        f"CHATHISTORY BETWEEN #h msgid={msg_ids[0]} msgid={msg_ids[4]} 10")) == msg_ids[1:4]
    assert ids(alice.send("CHATHISTORY AFTER #h timestamp=2023-11-14T22:13:21.000Z 10")) \
        == msg_ids[2:]
    gone = alice.send("CHATHISTORY LATEST #gone * 10")
    assert ids(gone) == [] and parse(gone[0]).params[1] == "INVALID_TARGET"


def test_chathistory_is_for_members_only() -> None:
    """A non-member asking for a channel's history gets FAIL INVALID_TARGET, as HTTP answers
    403 not_joined; once joined, the history is there."""
    world, alice = history_world()
    outsider = world.client("outsider", "message-tags batch draft/chathistory")
    refused = outsider.send("CHATHISTORY LATEST #h * 10")
    assert len(refused) == 1 and parse(refused[0]).params[:3] == [
        "CHATHISTORY", "INVALID_TARGET", "LATEST"]
    outsider.send("JOIN #h")
    assert ids(outsider.send("CHATHISTORY LATEST #h * 10"))


def test_chathistory_event_playback_and_errors() -> None:
    """event-playback adds JOINs; bad subcommands and refs get FAIL standard replies."""
    world, alice = history_world()
    alice.send("CAP REQ :draft/event-playback")
    kinds = [parse(line).command for line in alice.send("CHATHISTORY LATEST #h * 100")]
    assert kinds.count("JOIN") == 2 and kinds.count("PRIVMSG") == 5
    assert alice.send("CHATHISTORY FROB #h * 1") == [
        ":chat.local FAIL CHATHISTORY UNKNOWN_COMMAND FROB :Unknown command"]
    assert parse(alice.send("CHATHISTORY AFTER #h * 5")[0]).params[:2] == [
        "CHATHISTORY", "INVALID_PARAMS"]
    assert parse(alice.send("CHATHISTORY AFTER #h msgid=1 zero")[0]).params[1] == \
        "INVALID_PARAMS"
    assert parse(alice.send("CHATHISTORY AFTER #h foo=1 5")[0]).params[1] == \
        "INVALID_MSGREFTYPE"
    assert parse(alice.send("CHATHISTORY AFTER #h")[0]).params[1] == "INVALID_PARAMS"
    targets = alice.send("CHATHISTORY TARGETS timestamp=2000-01-01T00:00:00.000Z "
                         "timestamp=2100-01-01T00:00:00.000Z 10")
    assert [parse(line).params[1] for line in targets[1:-1]] == ["#h"]


def test_chathistory_without_batch_cap_sends_plain_lines() -> None:
    """A client without the batch cap gets the messages without BATCH lines."""
    world, _ = history_world()
    carol = world.client("carol")
    carol.send("JOIN #h")  # the history is for members
    out = carol.send("CHATHISTORY LATEST #h * 2")
    assert out == [":bob!bob@10.0.0.1 PRIVMSG #h :m3", ":bob!bob@10.0.0.1 PRIVMSG #h :m4"]


def test_sendq_overflow_wakes_the_adapter() -> None:
    """Going over the send queue calls wakeup even when bytes were already pending."""
    world = World(sendq=300)
    alice, bob = world.client("alice"), world.client("bob")
    alice.send("JOIN #a")
    bob.send("JOIN #a")
    alice.take()
    before = alice.wakeups
    for _ in range(10):
        bob.send("PRIVMSG #a :" + "x" * 50)
    assert alice.session.pending_size > 300
    assert alice.wakeups - before >= 2


def test_deliver_formats_each_variant_once() -> None:
    """A broadcast is encoded once per tag variant however many members get it."""
    world = World()
    sender = world.client("sender")
    sender.send("JOIN #big")
    members = [world.client(f"m{i}", "server-time" if i % 2 else "") for i in range(10)]
    for member in members:
        member.send("JOIN #big")
        member.take()
    sender.send("PRIVMSG #big :hello")
    chunks = [m.session.take_pending()[-1] for m in members]
    assert len({id(c) for c in chunks}) == 2  # the very same bytes objects are shared
    event = world.hub.find_room("#big").log.events[-1]  # type: ignore[union-attr]
    # The push's encodings lived in the publish's cache: the stored event keeps no bytes.
    assert not hasattr(event, "__dict__") and event._json is None


LINES = st.sampled_from([
    "NICK a", "NICK b", "NICK 1", "NICK", "USER u 0 * :r", "USER u", "CAP LS 302",
    "CAP REQ :echo-message message-tags", "CAP REQ :nope", "CAP END", "CAP LIST", "PASS x",
    "JOIN #r", "JOIN #r,#s", "JOIN 0", "JOIN", "PART #r", "PART #s :bye", "PRIVMSG #r :hi",
    "PRIVMSG a :yo", "PRIVMSG b :yo", "NOTICE #s :n", "TOPIC #r :t", "TOPIC #r", "NAMES #r",
    "WHO #r", "WHOIS a", "MODE #r", "MODE a +i", "AWAY :x", "AWAY", "PING x", "PONG x",
    "LIST", "QUIT :q", "CHATHISTORY LATEST #r * 5", "CHATHISTORY AFTER #r msgid=1 5",
    "@a=b :src PRIVMSG #r :tagged", "\x00\xff", ":only", "  ",
])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), LINES | st.text(max_size=30)), max_size=40))
def test_random_command_sequences_keep_invariants(steps: list[tuple[int, str]]) -> None:
    """Any sequence of lines from three clients never crashes, and the hub stays consistent."""
    world = World()
    clients = [world.client() for _ in range(3)]
    for index, line in steps:
        client = clients[index]
        out = client.send(line.replace("\r", "").replace("\n", ""))
        for text in out:
            parse(text)  # everything we send is a well-formed line
        session = client.session
        if session.state is State.REGISTERED:
            assert session.user is not None
            assert world.hub.find_user(session.user.nick) is session.user
        else:
            assert session.user is None
    for room in world.hub.iter_rooms():
        assert room.members, "empty rooms are dropped"
        for member in room.members.values():
            assert member.room(room.key) is room


def test_presence_lines_alone_ask_for_a_lazy_flush() -> None:
    """A JOIN alone asks for the lazy flush; a message after it asks for the prompt one."""
    world = World()
    alice = world.client("alice")
    alice.send("JOIN #r")
    lazy: list[int] = []
    alice.lazy_wakeup = lambda: lazy.append(1)  # type: ignore[method-assign]
    before = alice.wakeups
    bob = world.client("bob")
    bob.send("JOIN #r")
    assert (lazy, alice.wakeups) == ([1], before)  # only the presence tick was asked for
    bob.send("PRIVMSG #r :hi")
    assert alice.wakeups == before + 1
    assert [parse(line).command for line in alice.take()] == ["JOIN", "PRIVMSG"]


def test_writes_settled_later_keep_the_clients_order() -> None:
    """With an engine that answers later, replies and echoes come when it settles, in order."""
    world = World(engine=DeferredEngine)
    alice = world.client("alice", "echo-message")
    bob = world.client("bob")
    assert alice.send("JOIN #late") == []          # nothing until the engine answers
    assert alice.session.waiting == 1              # the adapter holds further lines meanwhile
    resumed: list[int] = []
    alice.resume = lambda: resumed.append(1)  # type: ignore[method-assign]
    world.engine.settle()
    assert resumed == [1] and alice.session.waiting == 0
    assert codes(alice.take()) == ["JOIN", "353", "366"]
    bob.send("JOIN #late")
    world.engine.settle()
    bob.take()
    alice.take()
    alice.send("PRIVMSG #late :one", "PRIVMSG #late :two")
    world.engine.settle()
    assert [parse(line).params[-1] for line in alice.take()] == ["one", "two"]
    assert [parse(line).params[-1] for line in bob.take()] == ["one", "two"]


def test_a_refusal_settled_later_is_answered_with_its_numeric() -> None:
    """A write the engine refuses later gets the numeric of its error code."""
    world = World(engine=DeferredEngine)
    alice = world.client("alice")
    alice.send("PART #nowhere")
    world.engine.settle()
    assert codes(alice.take()) == ["403"]


def test_registration_settled_after_the_client_left_releases_the_nick() -> None:
    """A nick claimed for a connection that closed meanwhile is given back at once."""
    world = World(engine=DeferredEngine)
    ghost = world.client()
    ghost.send("NICK ghost", "USER g 0 * :g")
    ghost.session.end("Connection closed", NOW)
    world.engine.settle()  # register succeeds, then the continuation quits it again
    world.engine.settle()
    assert world.hub.find_user("ghost") is None


def test_a_failing_handler_answers_400_and_keeps_the_session(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """An exception in a command handler answers 400 for that command; the session goes on."""
    from chat.irc import commands
    from chat.irc.commands.table import Command

    def broken(s: Session, msg: object, now: Now) -> None:
        raise ValueError("secret internals")

    monkeypatch.setitem(commands.COMMANDS, "TIME", Command(broken))
    alice = World().client("alice")
    out = alice.send("TIME")
    assert codes(out) == ["400"] and "secret" not in out[0]
    assert alice.session.state is State.REGISTERED
    assert codes(alice.send("PING x")) == ["PONG"]


def test_chathistory_limit_is_capped_at_1000() -> None:
    """A CHATHISTORY limit above the advertised 1000 returns at most 1000 events."""
    world = World(history=1200)
    alice = world.client("alice", "batch draft/chathistory")
    alice.send("JOIN #h")
    for i in range(1100):
        alice.send(f"PRIVMSG #h :m{i}")
    out = alice.send("CHATHISTORY LATEST #h * 5000")
    lines = [line for line in out if " PRIVMSG " in line]
    assert len(lines) == 1000 and lines[-1].endswith(":m1099")


def test_join_0_parts_every_channel() -> None:
    """JOIN 0 leaves every channel, each with its own PART."""
    world = World()
    alice = world.client("alice")
    alice.send("JOIN #a,#b,#c")
    out = alice.send("JOIN 0")
    assert sorted(parse(line).params[0] for line in out if " PART " in line) == \
        ["#a", "#b", "#c"]
    assert alice.session.user is not None and alice.session.user.rooms == ()
