"""Pure tests of running a channel in the hub: modes, kick, invite, operators, hand-over."""

from __future__ import annotations

import pytest

from chat.core.errors import (
    BadChannelKey,
    Banned,
    CannotSend,
    ChannelFull,
    InvalidHost,
    InvalidRealname,
    InviteOnly,
    NoSuchNick,
    NotChanOp,
    NotOnChannel,
    NotOper,
    UserNotInChannel,
    UserOnChannel,
)
from chat.core.events import Event
from chat.core.hub import Hub, User
from chat.core.modes import (
    MAX_MODES,
    Change,
    decode_changes,
    format_changes,
    key_problem,
    mask_pattern,
    normalize_mask,
    parse_channel_modes,
    parse_user_modes,
)


class Box:
    """A sink that records what it is pushed and offered."""

    def __init__(self) -> None:
        self.got: list[Event] = []
        self.offered: list[Event] = []
        self.killed: str | None = None

    def deliver(self, event: Event, cache: dict[object, bytes]) -> None:
        self.got.append(event)

    def offer(self, event: Event, cache: dict[object, bytes]) -> None:
        self.offered.append(event)

    def dropped(self, reason: str) -> None:
        self.killed = reason


def user(hub: Hub, nick: str, box: Box | None = None) -> User:
    return hub.register(nick, nick.lower(), "10.0.0.1", f"Real {nick}", "irc", box, 0.0)


def changes(hub: Hub, channel: str, text: str, *params: str) -> list[Change]:
    parsed = parse_channel_modes(channel, text, list(params))
    assert parsed.errors == []
    return parsed.changes


def room_of(hub: Hub, channel: str):  # type: ignore[no-untyped-def]
    room = hub.find_room(channel)
    assert room is not None
    return room


def test_mode_parser() -> None:
    """Flags, parameters both ways, missing parameters skipped, unknown letters refused."""
    parsed = parse_channel_modes("#c", "+ov-b+kl-lzz", ["bob", "carol", "eve", "key", "5"])
    assert parsed.changes == [Change(True, "o", "bob"), Change(True, "v", "carol"),
                              Change(False, "b", "eve!*@*"), Change(True, "k", "key"),
                              Change(True, "l", "5"), Change(False, "l")]
    assert [e.subject for e in parsed.errors] == ["z"]  # one 472 per unknown letter
    assert parse_channel_modes("#c", "+b", []).lists == ["b"]
    assert parse_channel_modes("#c", "+o", []).changes == []  # no nick: ignored
    assert parse_channel_modes("#c", "+l", ["x"]).changes == []  # not a number: ignored
    assert parse_channel_modes("#c", "+l", ["0"]).changes == []
    assert parse_channel_modes("#c", "-k", []).changes == [Change(False, "k", "*")]
    many = parse_channel_modes("#c", "+" + "v" * 10, [f"n{i}" for i in range(10)])
    assert len(many.changes) == MAX_MODES


def test_key_validation() -> None:
    """Keys: not empty, no spaces/commas/colons, at most KEYLEN; refused with 696."""
    assert key_problem("ok-key") == ""
    for bad in ("", "a b", "a,b", ":x", "k" * 33):
        assert key_problem(bad)
    parsed = parse_channel_modes("#c", "+k", ["a b"])
    assert parsed.changes == [] and parsed.errors[0].code == "invalid_mode_param"
    assert parsed.errors[0].params == ("#c", "k", "a b")


def test_masks_and_change_encoding() -> None:
    """Masks are completed and match casefolded globs; changes round-trip through an Op."""
    assert normalize_mask("bob") == "bob!*@*"
    assert normalize_mask("*@host") == "*!*@host"
    assert normalize_mask("bob!u") == "bob!u@*"
    assert mask_pattern("B?b!*@*.example").match("bob!x@a.example")
    assert not mask_pattern("bob!*@*").match("bobby!x@h")
    assert mask_pattern("[x]!*@*").match("{x}!u@h")  # rfc1459 folding
    done = [Change(True, "o", "a"), Change(False, "k", "*"), Change(True, "l", "3"),
            Change(True, "n")]
    assert format_changes(done) == ("+o-k+ln", ("a", "*", "3"))
    assert decode_changes(*format_changes(done)) == done


def test_user_mode_parser() -> None:
    """+i and +w are settable, +o is not (OPER), -o drops it, unknown letters error once."""
    added, removed, errors = parse_user_modes("", "+iwo")
    assert (added, removed, errors) == ("iw", "", [])
    added, removed, errors = parse_user_modes("io", "-o+x+y")
    assert (added, removed, len(errors)) == ("", "o", 1)


def test_creator_is_op_and_modes_need_op() -> None:
    """The creator is op; a non-op's MODE is refused with 482; +o/+v reach NAMES state."""
    hub = Hub()
    alice, bob = user(hub, "alice", Box()), user(hub, "bob", Box())
    hub.join(alice, "#c", 1.0)
    hub.join(bob, "#c", 2.0)
    with pytest.raises(NotChanOp):
        hub.mode(bob, "#c", changes(hub, "#c", "+m"), 3.0)
    result = hub.mode(alice, "#c", changes(hub, "#c", "+vm", "bob"), 3.0)
    assert result.event is not None and result.event.text == "+vm"
    room = room_of(hub, "#c")
    assert room.is_voiced(bob) and "m" in room.modes
    assert room.nick_with_prefix(alice) == "@alice" and room.nick_with_prefix(bob) == "+bob"


def test_mode_skips_what_changes_nothing_and_reports_missing_targets() -> None:
    """Setting what is set is no change; a nick not there comes back as 401/441."""
    hub = Hub()
    alice = user(hub, "alice", Box())
    user(hub, "outsider")
    hub.join(alice, "#c", 1.0)
    result = hub.mode(alice, "#c", changes(hub, "#c", "+nt"), 2.0)
    assert result.event is None and result.refused == ()
    result = hub.mode(alice, "#c", changes(hub, "#c", "+oo", "ghost", "outsider"), 2.0)
    assert [type(e) for e in result.refused] == [NoSuchNick, UserNotInChannel]
    assert result.refused[1].params == ("outsider", "#c")


def test_bans_keys_limits_and_invites_guard_joins() -> None:
    """474 banned, 475 key, 471 full, 473 invite-only; an invitation passes i/k/l once."""
    hub = Hub()
    op, guest = user(hub, "op", Box()), user(hub, "guest", Box())
    hub.join(op, "#c", 1.0)
    hub.mode(op, "#c", changes(hub, "#c", "+b", "guest!*@*"), 1.0)
    with pytest.raises(Banned):
        hub.join(guest, "#c", 2.0)
    hub.mode(op, "#c", changes(hub, "#c", "-b+k", "GUEST!*@*", "sesame"), 2.0)
    with pytest.raises(BadChannelKey):
        hub.join(guest, "#c", 2.0, "wrong")
    hub.mode(op, "#c", changes(hub, "#c", "-k+l", "*", "1"), 2.0)
    with pytest.raises(ChannelFull):
        hub.join(guest, "#c", 2.0)
    hub.mode(op, "#c", changes(hub, "#c", "-l+ik", "sesame"), 2.0)
    with pytest.raises(InviteOnly):
        hub.join(guest, "#c", 2.0)
    invite = hub.invite(op, "guest", "#c", 3.0)
    assert (invite.target, invite.args) == ("guest", ("#c",))
    assert hub.invited_to(guest) == ["#c"]
    assert hub.join(guest, "#c", 4.0).event is not None  # no key needed with the invitation
    assert hub.invited_to(guest) == []
    with pytest.raises(UserOnChannel):
        hub.invite(op, "guest", "#c", 5.0)
    hub.part(guest, "#c", "", 6.0)
    with pytest.raises(InviteOnly):  # the invitation was used up
        hub.join(guest, "#c", 7.0, "sesame")


def test_invite_rules_and_delivery() -> None:
    """INVITE: 401, 442, 482 on +i for non-ops; the invitee is told, ops are offered it."""
    hub = Hub()
    a, b, c = Box(), Box(), Box()
    op, member, guest = user(hub, "op", a), user(hub, "member", b), user(hub, "guest", c)
    hub.join(op, "#c", 1.0)
    hub.join(member, "#c", 1.0)
    with pytest.raises(NoSuchNick):
        hub.invite(op, "ghost", "#c", 2.0)
    with pytest.raises(NotOnChannel):
        hub.invite(guest, "member", "#c", 2.0)
    hub.invite(member, "guest", "#c", 2.0)  # allowed without +i
    assert c.got[-1].kind == "invite" and a.offered[-1].kind == "invite"
    assert b.offered == []  # the inviter is not offered its own invite
    hub.mode(op, "#c", changes(hub, "#c", "+i"), 3.0)
    with pytest.raises(NotChanOp):
        hub.invite(member, "guest", "#c", 4.0)


def test_speaking_rules() -> None:
    """+m needs voice, a banned member is silent, -n lets outsiders talk, ops always talk."""
    hub = Hub()
    op, talker, outsider = user(hub, "op", Box()), user(hub, "talker"), user(hub, "out")
    hub.join(op, "#c", 1.0)
    hub.join(talker, "#c", 1.0)
    with pytest.raises(CannotSend):
        hub.say(outsider, "#c", "hi", 2.0)
    hub.mode(op, "#c", changes(hub, "#c", "-n+m"), 2.0)
    hub.say(outsider, "#c", "hi", 2.0)
    with pytest.raises(CannotSend):
        hub.say(talker, "#c", "hi", 2.0)
    hub.mode(op, "#c", changes(hub, "#c", "-m+b", "talker"), 2.0)
    with pytest.raises(CannotSend, match="banned"):
        hub.say(talker, "#c", "hi", 2.0)
    hub.mode(op, "#c", changes(hub, "#c", "+v", "talker"), 2.0)
    hub.say(talker, "#c", "voiced now", 2.0)
    hub.mode(op, "#c", changes(hub, "#c", "+b", "op"), 2.0)
    hub.say(op, "#c", "ops talk", 2.0)


def test_kick_rules_and_event() -> None:
    """KICK: 442, 482, 401, 441; the victim sees it, leaves; the reason defaults to the nick."""
    hub = Hub()
    a, b = Box(), Box()
    op, victim, other = user(hub, "op", a), user(hub, "victim", b), user(hub, "other")
    hub.join(op, "#c", 1.0)
    hub.join(victim, "#c", 1.0)
    with pytest.raises(NotOnChannel):
        hub.kick(other, "#c", "victim", "", 2.0)
    hub.join(other, "#c", 2.0)
    with pytest.raises(NotChanOp):
        hub.kick(other, "#c", "victim", "", 2.0)
    with pytest.raises(NoSuchNick):
        hub.kick(op, "#c", "ghost", "", 2.0)
    hub.part(other, "#c", "", 2.0)
    with pytest.raises(UserNotInChannel):
        hub.kick(op, "#c", "other", "", 2.0)
    event = hub.kick(op, "#c", "victim", "", 3.0)
    assert (event.kind, event.text, event.args) == ("kick", "op", ("victim",))
    assert b.got[-1] is event and "victim" not in room_of(hub, "#c").members
    assert event.to_dict()["target"] == "victim"


def test_last_operator_leaving_hands_over_to_the_longest_present() -> None:
    """Part, quit and kick by the last op give @ to the earliest joiner; nick does not."""
    hub = Hub(server_name="irc.test")
    boxes = [Box() for _ in range(4)]
    first, second, third, fourth = (user(hub, n, b) for n, b in
                                    zip(("first", "second", "third", "fourth"), boxes,
                                        strict=True))
    for member in (first, second, third, fourth):
        hub.join(member, "#c", 1.0)
    room = room_of(hub, "#c")
    hub.rename(second, "second2", 2.0)  # keeps its place in the joining order
    hub.part(first, "#c", "", 3.0)
    assert room.ops == {"second2"}
    handover = boxes[2].got[-1]
    assert (handover.kind, handover.nick, handover.userhost, handover.text, handover.args) == \
        ("mode", "irc.test", "", "+o", ("second2",))
    # The hand-over depends on the state, not on the Op alone: pushed, not stored.
    assert room.log.events[-1].kind == "part" and room.log.last_id == handover.id
    hub.quit(second, "bye", 4.0)
    assert room.ops == {"third"}
    hub.kick(third, "#c", "third", "self", 5.0)
    assert room.ops == {"fourth"}


def test_rename_moves_op_voice_and_invites() -> None:
    """A nick change keeps operator, voice and pending invitations."""
    hub = Hub()
    op, guest, other = user(hub, "op", Box()), user(hub, "guest", Box()), user(hub, "x")
    hub.join(op, "#c", 1.0)
    hub.join(other, "#c", 1.0)
    hub.mode(op, "#c", changes(hub, "#c", "+vi", "x"), 1.0)
    hub.invite(op, "guest", "#c", 1.0)
    hub.rename(other, "y", 2.0)
    hub.rename(guest, "guest2", 2.0)
    room = room_of(hub, "#c")
    assert room.voices == {"y"} and hub.invited_to(guest) == ["#c"]
    assert [entry.nick for entry in hub.was("x")] == ["x"]


def test_oper_kill_wallops_chghost_setname() -> None:
    """Operators kill (a quit with the reason), send WALLOPS to +w, change hosts."""
    hub = Hub()
    a, b, c = Box(), Box(), Box()
    oper, victim, watcher = user(hub, "oper", a), user(hub, "victim", b), user(hub, "w", c)
    with pytest.raises(NotOper):
        hub.kill(oper, "victim", "x", 1.0)
    hub.oper(oper, "admin", 1.0)
    assert oper.oper and hub.census().opers == 1
    hub.set_user_modes(watcher, "iw", "", 1.0)
    assert hub.census().invisible == 1
    hub.wallops(oper, "hello opers", 2.0)
    assert c.got[-1].kind == "wallops" and a.got == []
    hub.join(victim, "#c", 2.0)
    hub.join(watcher, "#c", 2.0)
    quits = hub.kill(oper, "victim", "spam", 3.0)
    assert [e.text for e in quits] == ["Killed (oper (spam))"]
    assert b.killed == "Killed (oper (spam))" and b.got[-1].kind == "kill"
    assert b.got[-1].text == "spam"
    assert hub.find_user("victim") is None and hub.was("victim")
    assert room_of(hub, "#c").ops == {"w"}  # the victim was the op: handed over
    with pytest.raises(InvalidHost):
        hub.chghost(oper, "w", "u", "bad host", 4.0)
    event = hub.chghost(oper, "w", "new", "cloak.example", 4.0)
    assert watcher.prefix == "w!new@cloak.example" and event.userhost == "w@10.0.0.1"
    assert c.offered[-1] is event  # the changed user is offered its own CHGHOST
    with pytest.raises(InvalidRealname):
        hub.setname(watcher, "", 5.0)
    hub.setname(watcher, "New Name", 5.0)
    assert watcher.realname == "New Name"
    assert hub.set_user_modes(oper, "", "o", 6.0) == "-o" and hub.census().opers == 0


def test_tagmsg_is_offered_and_never_stored() -> None:
    """A TAGMSG is offered to members and fires watchers, but the log does not keep it."""
    hub = Hub()
    a, b = Box(), Box()
    alice, bob = user(hub, "alice", a), user(hub, "bob", b)
    hub.join(alice, "#c", 1.0)
    hub.join(bob, "#c", 1.0)
    room = room_of(hub, "#c")
    seen: list[Event] = []
    room.log.watch(lambda event, cache: seen.append(event))
    before = list(room.log.events)
    event = hub.say(alice, "#c", "", 2.0, "tagmsg", ("+typing", "active"))
    assert b.offered == [event] and seen == [event] and list(room.log.events) == before
    assert room.log.last_id == event.id and event.to_dict()["tags"] == {"+typing": "active"}
    private = hub.tell(alice, "bob", "", 3.0, "tagmsg", ("+typing", "paused"))
    assert b.offered[-1] is private and private.kind == "tagmsg"
    tagged = hub.say(alice, "#c", "re", 4.0, tags=("+draft/reply", str(event.id)))
    assert room.log.events[-1] is tagged and tagged.tags == {"+draft/reply": str(event.id)}


def test_away_is_offered_to_peers_once() -> None:
    """AWAY reaches each co-member once (away-notify), and a joiner's away is offered."""
    hub = Hub()
    a, b = Box(), Box()
    alice, bob = user(hub, "alice", a), user(hub, "bob", b)
    for channel in ("#a", "#b"):
        hub.join(alice, channel, 1.0)
        hub.join(bob, channel, 1.0)
    hub.set_away(alice, "lunch", 2.0)
    assert [(e.kind, e.text) for e in b.offered] == [("away", "lunch")]
    hub.join(alice, "#new", 3.0)
    hub.join(bob, "#new", 3.0)
    hub.set_away(bob, "gone", 3.0)
    hub.part(bob, "#new", "", 4.0)
    hub.join(bob, "#new", 5.0)
    assert a.offered[-1].kind == "away" and a.offered[-1].text == "gone"


def test_dropped_room_forgets_invitations() -> None:
    """An emptied room takes its invitations with it."""
    hub = Hub()
    op = user(hub, "op")
    user(hub, "guest")
    hub.join(op, "#c", 1.0)
    hub.invite(op, "guest", "#c", 1.0)
    hub.part(op, "#c", "", 2.0)
    assert hub.invites == {}


def test_snapshot_keeps_modes_bans_voices_invites_and_whowas() -> None:
    """A snapshot restores user modes, channel modes, key, limit, bans, voices, joining
    order, invitations, WHOWAS and the LUSERS counters."""
    from chat.core.snapshot import restore, snapshot

    hub = Hub()
    op, voiced, guest = user(hub, "op", Box()), user(hub, "voiced", Box()), user(hub, "g")
    hub.join(op, "#c", 1.0)
    hub.join(voiced, "#c", 1.0)
    hub.mode(op, "#c", changes(hub, "#c", "+vkl-t+ib", "voiced", "key", "9", "bad!*@*"), 2.0)
    hub.invite(op, "g", "#c", 2.0)
    hub.set_user_modes(guest, "iw", "", 2.0)
    hub.oper(op, "admin", 2.0)
    gone = user(hub, "gone")
    hub.quit(gone, "bye", 3.0)
    copy = Hub()
    restore(copy, snapshot(hub))
    room = room_of(copy, "#c")
    assert (room.modes, room.password, room.limit) == ("in", "key", 9)
    assert room.voices == {"voiced"} and room.ops == {"op"} and list(room.members) == \
        ["op", "voiced"]
    assert [(b.mask, b.by) for b in room.bans] == [("bad!*@*", "op!op@10.0.0.1")]
    assert copy.invited_to(copy.users["g"]) == ["#c"] and copy.users["g"].modes == "iw"
    assert copy.census() == hub.census() and [e.nick for e in copy.was("gone")] == ["gone"]
