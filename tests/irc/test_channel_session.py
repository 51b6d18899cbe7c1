"""Pure tests of the channel-running commands: MODE, KICK, INVITE, WHO, LIST, NAMES, the
operator commands and client tags, through in-memory sessions (the World harness)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chat.core.passwords import hash_password
from chat.irc.message import parse
from tests.irc.test_session import World, codes

OPER = "admin:" + hash_password("hunter2", n=2)  # n=2: cheap for tests


def world_with(*nicks: str, channel: str = "#c", caps: str = "", **config: object):
    """A world where the first nick created ``channel`` and the others joined it."""
    world = World(**config)  # type: ignore[arg-type]
    clients = [world.client(nick, caps) for nick in nicks]
    for client in clients:
        client.send(f"JOIN {channel}")
    for client in clients:
        client.take()
    return (world, *clients)


def test_mode_query_and_changes_seen_as_one_line() -> None:
    """MODE #c answers 324 (key/limit to members) and 329; several changes go out as one."""
    world, alice, bob = world_with("alice", "bob")
    out = alice.send("MODE #c +ovkl bob bob sesame 10")
    assert out == [":alice!alice@10.0.0.1 MODE #c +ovkl bob bob sesame 10"]
    assert bob.take() == out
    assert alice.send("MODE #c")[0].endswith(" 324 alice #c +ntkl sesame 10")
    outsider = world.client("eve")
    assert outsider.send("MODE #c")[0].endswith(" 324 eve #c +ntkl")
    assert codes(outsider.send("MODE #c")) == ["324", "329"]


@pytest.mark.parametrize(("line", "numeric"), [
    ("MODE #c +o", None),                  # no nick: ignored, nothing to say
    ("MODE #c +o ghost", "401"),
    ("MODE #c +v eve", "441"),
    ("MODE #c +z", "472"),
    ("MODE #c +k :a b", "696"),
    ("MODE #c +k :", "696"),
    ("MODE #c +k " + "k" * 40, "696"),
    ("MODE #c +l many", None),             # an invalid limit is ignored
    ("KICK #c ghost", "401"),
    ("KICK #c eve", "441"),
    ("KICK #none bob", "403"),
    ("KICK #c", "461"),
    ("INVITE bob #c", "443"),
    ("INVITE ghost #c", "401"),
    ("INVITE eve #none", "403"),
    ("INVITE eve", "461"),
    ("OPER admin wrong", "464"),
    ("OPER nobody hunter2", "491"),
    ("KILL bob :x", "481"),
    ("WALLOPS :hi", "481"),
    ("CHGHOST bob u h", "481"),
    ("MODE alice +q", "501"),
])
def test_channel_error_numerics(line: str, numeric: str | None) -> None:
    """Each refusal gets its numeric (modern.ircdocs.horse), addressed to the sender."""
    world, alice, bob = world_with("alice", "bob", oper=(OPER,))
    world.client("eve")
    out = alice.send(line)
    assert codes(out) == ([numeric] if numeric else [])


def test_non_operators_get_482() -> None:
    """MODE changes, KICK, and INVITE on +i need operator status; +b alone lists."""
    world, alice, bob = world_with("alice", "bob")
    world.client("eve")
    assert codes(bob.send("MODE #c +m")) == ["482"]
    assert codes(bob.send("KICK #c alice")) == ["482"]
    assert codes(bob.send("MODE #c +b")) == ["368"]
    alice.send("MODE #c +i")
    bob.take()
    assert codes(bob.send("INVITE eve #c")) == ["482"]
    assert codes(bob.send("TOPIC #c :x")) == ["482"]
    alice.send("MODE #c -t")
    bob.take()
    assert codes(bob.send("TOPIC #c :anyone")) == ["TOPIC"]


def test_ban_list_join_and_speech() -> None:
    """+b masks: listed 367/368, joins refused 474, a banned member cannot speak (404)."""
    world, alice, bob = world_with("alice", "bob")
    alice.send("MODE #c +b bob!*@10.0.0.*")
    out = alice.send("MODE #c b")
    assert codes(out) == ["367", "368"]
    assert parse(out[0]).params[1:4] == ["#c", "bob!*@10.0.0.*", "alice!alice@10.0.0.1"]
    bob.take()
    assert codes(bob.send("PRIVMSG #c :let me talk")) == ["404"]
    assert alice.take() == []
    bob.send("PART #c")
    assert codes(bob.send("JOIN #c")) == ["474"]


def test_key_limit_invite_only_joins() -> None:
    """475 without the key, 471 when full, 473 without an invitation; JOIN #c key works."""
    world, alice = world_with("alice")
    bob, carol = world.client("bob"), world.client("carol")
    alice.send("MODE #c +k sesame")
    assert codes(bob.send("JOIN #c")) == ["475"]
    assert codes(bob.send("JOIN #x,#c new,sesame")) == ["JOIN", "353", "366"] * 2
    alice.send("MODE #c +l 2")
    assert codes(carol.send("JOIN #c sesame")) == ["471"]
    alice.send("MODE #c -lk+i *")
    assert codes(carol.send("JOIN #c")) == ["473"]


def test_invite_flow_with_invite_notify_and_list() -> None:
    """341 to the inviter, INVITE to the invitee, invite-notify to ops, 336/337 list."""
    world, alice, bob = world_with("alice", "bob", caps="invite-notify")
    alice.send("MODE #c +o bob")
    bob.take()
    carol = world.client("carol")
    out = alice.send("INVITE carol #c")
    assert out == [":chat.local 341 alice carol #c"]
    assert carol.take() == [":alice!alice@10.0.0.1 INVITE carol #c"]
    assert bob.take() == [":alice!alice@10.0.0.1 INVITE carol #c"]
    assert codes(carol.send("INVITE")) == ["336", "337"]
    alice.send("MODE #c +i")
    assert codes(carol.send("JOIN #c"))[0] == "JOIN"
    assert codes(carol.send("INVITE")) == ["337"]


def test_kick_several_targets_and_default_reason() -> None:
    """KICK #c a,b sends one KICK per user, the reason defaulting to the kicker's nick."""
    world, alice, bob, carol = world_with("alice", "bob", "carol")
    out = alice.send("KICK #c bob,carol")
    assert out == [":alice!alice@10.0.0.1 KICK #c bob :alice",
                   ":alice!alice@10.0.0.1 KICK #c carol :alice"]
    assert bob.take()[0] == out[0]
    assert codes(bob.send("PRIVMSG #c :back?")) == ["404"]


def test_names_prefixes_multi_prefix_and_secret() -> None:
    """NAMES shows @ and + (both with multi-prefix); secret channels hide from outsiders."""
    world, alice, bob = world_with("alice", "bob")
    alice.send("MODE #c +v alice")
    bob.take()
    multi = world.client("multi", "multi-prefix")
    names = [line for line in multi.send("JOIN #c") if " 353 " in line][0]
    bob.take()
    assert names.endswith("= #c :@+alice bob multi")
    assert bob.send("NAMES #c,#c")[0].endswith("= #c :@alice bob multi")
    alice.send("MODE #c +s")
    bob.take()
    eve = world.client("eve")
    assert codes(eve.send("NAMES #c")) == ["366"]
    assert codes(eve.send("LIST")) == ["321", "323"]
    assert bob.send("NAMES #c")[0].split()[3] == "@"  # '@' marks a secret channel
    assert "#c" not in eve.send("WHOIS alice")[1]


def test_moderated_channel_needs_voice() -> None:
    """+m: members without voice get 404, voiced members and ops speak."""
    world, alice, bob = world_with("alice", "bob")
    alice.send("MODE #c +m")
    bob.take()
    assert codes(bob.send("PRIVMSG #c :x")) == ["404"]
    alice.send("MODE #c +v bob")
    bob.take()
    assert bob.send("PRIVMSG #c :now") == []
    assert alice.take() == [":bob!bob@10.0.0.1 PRIVMSG #c :now"]


def test_no_external_messages_mode() -> None:
    """+n (default) refuses outsiders with 404; -n lets them in."""
    world, alice = world_with("alice")
    eve = world.client("eve")
    assert codes(eve.send("PRIVMSG #c :hi")) == ["404"]
    alice.send("MODE #c -n")
    assert eve.send("PRIVMSG #c :hi") == []
    assert alice.take() == [":eve!eve@10.0.0.1 PRIVMSG #c :hi"]


def test_operator_handover_is_a_server_mode() -> None:
    """When the last op parts, everyone sees the server give @ to the earliest joiner."""
    world, alice, bob, carol = world_with("alice", "bob", "carol")
    alice.send("PART #c")
    assert bob.take() == [":alice!alice@10.0.0.1 PART #c", ":chat.local MODE #c +o bob"]
    assert carol.take()[-1] == ":chat.local MODE #c +o bob"


def test_oper_kill_wallops() -> None:
    """OPER gives 381 and +o; KILL shows KILL and ERROR; WALLOPS reaches +w users."""
    world, alice, bob = world_with("alice", "bob", oper=(OPER,))
    out = alice.send("OPER admin hunter2")
    assert out == [":chat.local 381 alice :You are now an IRC operator",
                   ":alice!alice@10.0.0.1 MODE alice +o"]
    assert codes(alice.send("MODE alice")) == ["221"] and alice.send("MODE alice")[0] \
        .endswith("+o")
    carol = world.client("carol")
    carol.send("MODE carol +w")
    assert alice.send("WALLOPS :maintenance") == [
        ":alice!alice@10.0.0.1 WALLOPS :maintenance"]
    assert carol.take() == [":alice!alice@10.0.0.1 WALLOPS :maintenance"]
    assert bob.take() == []
    assert alice.send("KILL bob :flooding") == [
        ":bob!bob@10.0.0.1 QUIT :Killed (alice (flooding))"]
    assert bob.take() == [":alice!alice@10.0.0.1 KILL bob :flooding",
                          "ERROR :Closing Link: Killed (alice (flooding))"]
    assert bob.session.state.value == "closed" and world.hub.find_user("bob") is None
    assert "313" in codes(carol.send("WHOIS alice"))
    assert "*" in parse(carol.send("WHO alice")[0]).params[6]


def test_user_modes_invisible_and_lusers() -> None:
    """+i hides from WHO * and NAMES of outsiders and counts as invisible in LUSERS."""
    world, alice = world_with("alice")
    ghost = world.client("ghost")
    ghost.send("MODE ghost +i", "JOIN #hidden")
    alice.take()
    out = alice.send("LUSERS")
    assert "1 invisible" in out[0] and codes(out) == ["251", "254", "255", "265", "266"]
    assert "ghost" not in " ".join(alice.send("WHO *"))
    assert alice.send("NAMES #hidden")[0].endswith(" 366 alice #hidden :End of /NAMES list")
    assert codes(alice.send("WHO ghost"))[0] == "352"  # an exact nick is always answered


def test_who_masks_flags_and_whox() -> None:
    """WHO masks match nick/user/host/realname; H/G and prefixes; WHOX fields in order."""
    world, alice, bob = world_with("alice", "bob")
    bob.send("AWAY :out")
    out = alice.send("WHO b*")
    assert [parse(line).params[5:7] for line in out[:-1]] == [["bob", "G"]]
    assert parse(alice.send("WHO #c")[0]).params[6] == "H@"
    assert codes(alice.send("WHO *Real*")) == ["352", "352", "315"]
    whox = alice.send("WHO #c %tnfr,42")
    assert parse(whox[0]).params == ["alice", "42", "alice", "H@", "Real alice"]
    assert parse(alice.send("WHO bob %cuhsnal")[0]).params[1:] == [
        "*", "bob", "10.0.0.1", "chat.local", "bob", "0", "0"][:6] + ["0"]


def test_list_filters() -> None:
    """LIST with channel names, >n/<n members and masks (ELIST)."""
    world, alice, bob = world_with("alice", "bob", channel="#big")
    alice.send("JOIN #small")
    rows = lambda line: [parse(x).params[1] for x in alice.send(line) if " 322 " in x]  # noqa: E731
    assert rows("LIST") == ["#big", "#small"]
    assert rows("LIST >1") == ["#big"]
    assert rows("LIST <2") == ["#small"]
    assert rows("LIST #small") == ["#small"]
    assert rows("LIST *ma*") == ["#small"]
    assert rows("LIST !*ma*") == ["#big"]
    assert rows("LIST C<5") == ["#big", "#small"] and rows("LIST T>1") == ["#big", "#small"]


def test_whowas_entries_and_counts() -> None:
    """WHOWAS lists the latest entries first (314/312), limited by a count, 369 ends."""
    world = World()
    for name in ("first", "second"):
        client = world.client("gone")
        client.send(f"SETNAME :{name}", f"QUIT :{name}")
    asker = world.client("asker")
    out = asker.send("WHOWAS gone")
    assert codes(out) == ["314", "312", "314", "312", "369"]
    assert parse(out[0]).params[-1] == "second"
    assert codes(asker.send("WHOWAS gone 1")) == ["314", "312", "369"]


def test_client_tags_relayed_to_message_tags_clients() -> None:
    """+tags ride on PRIVMSG and TAGMSG to message-tags clients; the echo has the msgid."""
    world = World()
    alice = world.client("alice", "message-tags echo-message")
    bob = world.client("bob", "message-tags")
    plain = world.client("plain")
    for client in (alice, bob, plain):
        client.send("JOIN #t")
    for client in (alice, bob, plain):
        client.take()
    echo = alice.send("@+typing=active;label=x;+example.com/k=a\\sb TAGMSG #t")
    got = bob.take()
    assert parse(echo[0]).tags == parse(got[0]).tags
    assert parse(got[0]).tags == {"+typing": "active", "+example.com/k": "a b",
                                  "msgid": parse(got[0]).tags["msgid"]}  # type: ignore[index]
    assert plain.take() == []  # no message-tags: no TAGMSG at all
    alice.send("@+draft/reply=1 PRIVMSG #t :re")
    assert parse(bob.take()[0]).tags["+draft/reply"] == "1"  # type: ignore[index]
    assert plain.take() == [":alice!alice@10.0.0.1 PRIVMSG #t :re"]
    assert alice.send("TAGMSG #t") == []  # no client tags: nothing to relay


def test_away_notify_extended_join_setname_chghost() -> None:
    """Clients with the caps see AWAY, JOIN with realname, SETNAME and CHGHOST."""
    world = World(oper=(OPER,))
    watcher = world.client("watcher", "away-notify extended-join setname chghost")
    other = world.client("other")
    watcher.send("JOIN #x")
    assert codes(other.send("JOIN #x", "AWAY :brb", "SETNAME :New Name")) == [
        "JOIN", "353", "366", "306"]  # no setname cap: no SETNAME echo
    assert watcher.take() == [":other!other@10.0.0.1 JOIN #x * :Real other",
                              ":other!other@10.0.0.1 AWAY :brb",
                              ":other!other@10.0.0.1 SETNAME :New Name"]
    watcher.send("OPER admin hunter2")
    out = watcher.send("CHGHOST other user cloak.test")
    assert out == [":other!other@10.0.0.1 CHGHOST user cloak.test",
                   ":chat.local NOTICE watcher :Changed the host of other to user@cloak.test"]
    assert other.take() == []  # without the chghost cap, nothing
    assert codes(other.send("SETNAME :")) == ["FAIL"]


def test_empty_realname_is_461() -> None:
    """USER with an empty realname is missing a parameter."""
    client = World().client()
    assert codes(client.send("NICK x", "USER x 0 * :")) == ["461"]


def test_labeled_response() -> None:
    """A labelled command gets ACK, one labelled line, or a labelled batch."""
    world = World()
    alice = world.client("alice", "labeled-response batch message-tags")
    assert alice.send("@label=a1 PONG x") == ["@label=a1 :chat.local ACK"]
    assert alice.send("@label=a2 PING t") == ["@label=a2 :chat.local PONG chat.local t"]
    out = alice.send("@label=a3 JOIN #l")
    assert out[0].startswith("@label=a3 :chat.local BATCH +l") and out[-1].endswith("BATCH -l1")
    assert all(parse(line).tags.get("batch") == "l1" for line in out[1:-1])  # type: ignore[union-attr]
    unlabeled = world.client("bob", "batch")
    assert unlabeled.send("@label=x PING t") == [":chat.local PONG chat.local t"]


def test_a_labelled_message_to_ourselves_is_its_own_answer() -> None:
    """With echo-message, PRIVMSG to our own nick answers with that message, labelled (not
    an unlabelled copy and an ACK)."""
    alice = World().client("alice", "labeled-response batch echo-message message-tags")
    [line] = alice.send("@label=s1 PRIVMSG alice :hi me")
    assert parse(line).tags["label"] == "s1" and line.endswith("PRIVMSG alice :hi me")


LINES = st.sampled_from([
    "JOIN #r", "JOIN #r key", "JOIN #s", "PART #r", "PART #s", "MODE #r +o a", "MODE #r +o b",
    "MODE #r -o a", "MODE #r +v c", "MODE #r -v c", "MODE #r +b b", "MODE #r -b b!*@*",
    "MODE #r +b c!*@*", "MODE #r +i", "MODE #r -i", "MODE #r +k key", "MODE #r -k",
    "MODE #r +l 2", "MODE #r -l", "MODE #r +m", "MODE #r -m", "MODE #s +ov a b",
    "KICK #r a", "KICK #r b,c :out", "KICK #s a", "INVITE a #r", "INVITE b #r",
    "INVITE c #s", "PRIVMSG #r :hi", "NICK a", "NICK b2", "NICK c", "QUIT",
])


@settings(max_examples=120, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), LINES), max_size=40))
def test_random_channel_sequences_keep_invariants(steps: list[tuple[int, str]]) -> None:
    """Random MODE/KICK/INVITE/JOIN/PART from four clients: ops and voices are members, a
    banned user never gets in, and every member's NAMES matches the hub's membership."""
    world = World()
    clients = [world.client(nick) for nick in ("a", "b", "c", "d")]
    for index, line in steps:
        client = clients[index]
        user = client.session.user
        if user is None:
            continue
        room = world.hub.find_room("#r")
        banned = room is not None and room.banned(user) and user.key not in room.members
        client.send(line)
        if banned and line.startswith("JOIN #r"):
            assert user.key not in room.members  # type: ignore[union-attr]
    for room in world.hub.iter_rooms():
        assert room.members and room.ops <= room.members.keys()
        assert room.voices <= room.members.keys()
        for member in room.members.values():
            assert member.room(room.key) is room
    for client in clients:
        user = client.session.user
        if user is None:
            continue
        client.take()
        for room in list(user.rooms):
            lines = [line for line in client.send(f"NAMES {room.name}") if " 353 " in line]
            shown = " ".join(parse(line).params[-1] for line in lines).split()
            assert shown == [room.nick_with_prefix(m) for m in room.members.values()]


def test_mode_kick_and_labels_settled_later() -> None:
    """With an engine that answers later, MODE and KICK echo when it settles, and a
    labelled command is labelled then (the session counts as waiting meanwhile)."""
    from tests.engines import DeferredEngine

    world = World(engine=DeferredEngine)
    alice = world.client("alice", "labeled-response batch")
    bob = world.client("bob")
    for client in (alice, bob):
        client.send("JOIN #late")
        world.engine.settle()  # type: ignore[attr-defined]
        client.take()
    alice.take()
    assert alice.send("@label=m1 MODE #late +v bob") == []
    assert alice.session.waiting == 1
    world.engine.settle()  # type: ignore[attr-defined]
    assert alice.take() == ["@label=m1 :alice!alice@10.0.0.1 MODE #late +v bob"]
    assert alice.send("KICK #late bob") == []
    world.engine.settle()  # type: ignore[attr-defined]
    assert alice.take() == [":alice!alice@10.0.0.1 KICK #late bob :alice"]


def test_oper_check_settled_later_holds_the_session() -> None:
    """OPER waits for the offloaded hash check; the session counts as waiting meanwhile."""
    from chat.core.pending import Pending

    world = World(oper=(OPER,))
    alice = world.client("alice")
    checks: list[tuple[object, Pending[object]]] = []

    def later(work: object) -> Pending[object]:
        pending: Pending[object] = Pending()
        checks.append((work, pending))
        return pending

    world.info.offload = later  # type: ignore[assignment]
    assert alice.send("OPER admin hunter2") == [] and alice.session.waiting == 1
    work, pending = checks[0]
    pending.resolve(work())  # type: ignore[operator]
    assert codes(alice.take()) == ["381", "MODE"] and alice.session.waiting == 0
