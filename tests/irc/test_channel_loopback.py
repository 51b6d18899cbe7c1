"""Running a channel over real loopback sockets: every numeric and rule of issue 11.

Each case starts a server with three registered clients, ``a`` (who creates ``#c`` and is
its operator), ``b`` (in ``#c``) and ``e`` (outside), then runs steps.  A step is
``(client, line, pattern)``: send ``line`` (if any), then wait for a line matching
``pattern`` on that client's socket.  A pattern starting with ``!`` must *not* arrive: the
client pings the server and no line before the PONG may match.
"""

from __future__ import annotations

import re

import pytest

from chat.core.passwords import hash_password
from tests.conftest import MakeServer
from tests.irc.conftest import Connect, IrcClient

OPER = "admin:" + hash_password("hunter2", n=2)
Step = tuple[str, str | None, str | None]

CASES: dict[str, tuple[dict[str, tuple[str, ...]], list[Step]]] = {
    # --- prefixes, 005, MODE query and changes ----------------------------------------------
    "005 PREFIX and CHANMODES": ({}, [
        ("e", "VERSION", r" 005 e .*CHANMODES=b,k,l,imnst "),
        ("e", None, r" 005 e .*PREFIX=\(ov\)@\+ ")]),
    "creator is op, MODE #c 324 329": ({}, [
        ("b", "NAMES #c", r" 353 b = #c :@a b$"),
        ("a", "MODE #c", r" 324 a #c \+nt$"), ("a", None, r" 329 a #c \d+$")]),
    "several modes in one MODE line": ({}, [
        ("a", "MODE #c +ovl b b 5", r"^:a!\S+ MODE #c \+ovl b b 5$"),
        ("b", None, r"^:a!\S+ MODE #c \+ovl b b 5$"),
        ("e", "NAMES #c", r"= #c :@a @\+?b$|= #c :@a @b$")]),
    "multi-prefix shows @+": ({"e": ("multi-prefix",)}, [
        ("a", "MODE #c +v a", r"MODE #c \+v a"), ("e", "NAMES #c", r"= #c :@\+a b$")]),
    "MODE by a non-op is 482": ({}, [("b", "MODE #c +o b", r" 482 b #c :")]),
    "MODE +o of a missing nick is 401": ({}, [("a", "MODE #c +o ghost", r" 401 a ghost :")]),
    "MODE +o of an absent nick is 441": ({}, [("a", "MODE #c +o e", r" 441 a e #c :")]),
    "MODE -o and -v": ({}, [
        ("a", "MODE #c +v b", r"\+v b"),
        ("a", "MODE #c -v+o-o b b b", r"MODE #c -v\+o-o b b b$")]),
    "unknown mode is 472": ({}, [("a", "MODE #c +z", r" 472 a z :")]),
    # --- bans ---------------------------------------------------------------------------
    "ban list 367 368": ({}, [
        ("a", "MODE #c +b e*!*@*", r"MODE #c \+b e\*!\*@\*$"),
        ("b", "MODE #c +b", r" 367 b #c e\*!\*@\* a!a@127\.0\.0\.1 \d+$"),
        ("b", None, r" 368 b #c :")]),
    "banned join is 474": ({}, [
        ("a", "MODE #c +b e", r"\+b e!\*@\*"), ("e", "JOIN #c", r" 474 e #c :")]),
    "banned member cannot speak": ({}, [
        ("a", "MODE #c +b *!b@*", r"\+b"), ("b", "PRIVMSG #c :hi", r" 404 b #c :"),
        ("a", None, "!PRIVMSG #c :hi")]),
    # --- key ----------------------------------------------------------------------------------
    "key: join refused 475, right key joins": ({}, [
        ("a", "MODE #c +k sesame", r"\+k sesame"), ("e", "JOIN #c", r" 475 e #c :"),
        ("e", "JOIN #c sesame", r"^:e!\S+ JOIN #c$")]),
    "key: empty is 696": ({}, [("a", "MODE #c +k :", r" 696 a #c k \* :")]),
    "key: spaces are 696": ({}, [("a", "MODE #c +k :a b", r" 696 a #c k a_b :")]),
    "key: too long is 696": ({}, [("a", "MODE #c +k " + "k" * 33, r" 696 a #c k k+ :")]),
    "key: -k removes": ({}, [
        ("a", "MODE #c +k s", r"\+k s"), ("a", "MODE #c -k x", r"MODE #c -k \*$"),
        ("e", "JOIN #c", r"JOIN #c$")]),
    # --- limit -------------------------------------------------------------------------------
    "limit: full is 471": ({}, [
        ("a", "MODE #c +l 2", r"\+l 2"), ("e", "JOIN #c", r" 471 e #c :")]),
    "limit: invalid values ignored": ({}, [
        ("a", "MODE #c +l x", None), ("a", "MODE #c +l -3", None),
        ("a", "MODE #c", r" 324 a #c \+nt$")]),
    "limit: lowered below the member count": ({}, [
        ("a", "MODE #c +l 1", r"\+l 1"), ("b", None, r"\+l 1"),
        ("b", "PRIVMSG #c :still here", None), ("a", None, "still here"),
        ("e", "JOIN #c", r" 471 ")]),
    "limit: removed with -l": ({}, [
        ("a", "MODE #c +l 2", r"\+l 2"), ("a", "MODE #c -l", r"-l$"),
        ("e", "JOIN #c", r"JOIN #c$")]),
    # --- invite-only and INVITE ------------------------------------------------------------------
    "invite-only is 473; INVITE lets in": ({}, [
        ("a", "MODE #c +i", r"\+i"), ("e", "JOIN #c", r" 473 e #c :"),
        ("a", "INVITE e #c", r" 341 a e #c$"), ("e", None, r"^:a!\S+ INVITE e #c$"),
        ("e", "JOIN #c", r"JOIN #c$")]),
    "INVITE of a member is 443": ({}, [("a", "INVITE b #c", r" 443 a b #c :")]),
    "INVITE from outside is 442": ({}, [("e", "INVITE b #c", r" 442 e #c :")]),
    "INVITE on +i by a non-op is 482": ({}, [
        ("a", "MODE #c +i", r"\+i"), ("b", "INVITE e #c", r" 482 b #c :")]),
    "invite list 336 337": ({}, [
        ("a", "INVITE e #c", r" 341 "), ("e", "INVITE", r" 336 e #c$"),
        ("e", None, r" 337 e :")]),
    "invite-notify to operators": ({"a": ("invite-notify",)}, [
        ("a", "MODE #c +o b", r"\+o b"), ("b", "INVITE e #c", r" 341 "),
        ("a", None, r"^:b!\S+ INVITE e #c$")]),
    # --- +m +n +s +t ----------------------------------------------------------------------------
    "moderated: 404 without voice": ({}, [
        ("a", "MODE #c +m", r"\+m"), ("b", "PRIVMSG #c :x", r" 404 b #c :"),
        ("a", "MODE #c +v b", r"\+v b"), ("b", "PRIVMSG #c :now", None),
        ("a", None, r"PRIVMSG #c :now")]),
    "no external messages: 404, -n lets in": ({}, [
        ("e", "PRIVMSG #c :x", r" 404 e #c :"), ("a", "MODE #c -n", r"-n"),
        ("e", "PRIVMSG #c :outside", None), ("b", None, r"^:e!\S+ PRIVMSG #c :outside")]),
    "secret: hidden from LIST, WHOIS, NAMES": ({}, [
        ("a", "MODE #c +s", r"\+s"), ("e", "LIST", r" 323 "), ("e", None, "! 322 "),
        ("e", "NAMES #c", r" 366 e #c :"), ("e", None, "! 353 "),
        ("e", "WHOIS a", r" 318 "), ("e", None, "! 319 "),
        ("b", "WHOIS a", r" 319 b a :@#c$")]),
    "topic by ops only, -t by anyone": ({}, [
        ("b", "TOPIC #c :mine", r" 482 b #c :"), ("a", "MODE #c -t", r"-t"),
        ("b", "TOPIC #c :mine", r"^:b!\S+ TOPIC #c :mine$")]),
    # --- KICK ------------------------------------------------------------------------------------
    "KICK with the default comment": ({}, [
        ("a", "KICK #c b", r"^:a!\S+ KICK #c b :a$"), ("b", None, r"^:a!\S+ KICK #c b :a$"),
        ("b", "PRIVMSG #c :x", r" 404 ")]),
    "KICK of several targets": ({}, [
        ("e", "JOIN #c", r"JOIN #c"), ("a", "KICK #c b,e :out", r"KICK #c b :out$"),
        ("a", None, r"KICK #c e :out$")]),
    "KICK by a non-op is 482": ({}, [("b", "KICK #c a", r" 482 b #c :")]),
    "KICK in no channel is 403": ({}, [("a", "KICK #nowhere b", r" 403 a #nowhere :")]),
    "KICK of an absent nick is 441": ({}, [("a", "KICK #c e", r" 441 a e #c :")]),
    "last op leaving hands over": ({}, [
        ("a", "PART #c", r"PART #c"), ("b", None, r"^:\S+ MODE #c \+o b$"),
        ("b", "NAMES #c", r"= #c :@b$")]),
    # --- NAMES, LIST ----------------------------------------------------------------------------
    "NAMES with several channels": ({}, [
        ("a", "JOIN #d", r" 366 a #d "), ("b", "NAMES #c,#d", r" 353 b = #c :@a b$"),
        ("b", None, r" 366 b #c "), ("b", None, r" 353 b = #d :@a$"),
        ("b", None, r" 366 b #d ")]),
    "LIST 321 322 323 and filters": ({}, [
        ("a", "JOIN #d", r" 366 a #d "), ("e", "LIST", r" 321 e Channel :"),
        ("e", None, r" 322 e #c 2 :"), ("e", "LIST >1", r" 322 e #c 2"),
        ("e", None, "! 322 e #d "), ("e", "LIST #d", r" 322 e #d 1"),
        ("e", "LIST *d", r" 322 e #d 1"), ("e", None, r" 323 e :")]),
    # --- operators and user modes --------------------------------------------------------------
    "OPER 381 and +o; 313 in WHOIS": ({}, [
        ("e", "OPER admin hunter2", r" 381 e :"), ("e", None, r"^:e!\S+ MODE e \+o$"),
        ("a", "WHOIS e", r" 313 a e :is an IRC operator"),
        ("a", "WHO e", r" 352 a \* e 127\.0\.0\.1 \S+ e H\* :0 ")]),
    "OPER wrong password 464": ({}, [("e", "OPER admin nope", r" 464 e :")]),
    "OPER unknown name 491": ({}, [("e", "OPER root hunter2", r" 491 e :")]),
    "KILL": ({}, [
        ("e", "OPER admin hunter2", r" 381 "), ("e", "KILL b :flood", None),
        ("b", None, r"^:e!\S+ KILL b :flood$"), ("b", None, r"^ERROR :Closing Link: \S+ "
                                                    r"\(Killed \(e \(flood\)\)\)$"),
        ("a", None, r"^:b!\S+ QUIT :Killed \(e \(flood\)\)$"), ("a", "ISON b", r" 303 a :$")]),
    "KILL by a non-oper is 481": ({}, [("e", "KILL b :x", r" 481 e :")]),
    "WALLOPS to +w": ({}, [
        ("b", "MODE b +w", r"MODE b \+w"), ("e", "OPER admin hunter2", r" 381 "),
        ("e", "WALLOPS :restart soon", r"WALLOPS :restart soon"),
        ("b", None, r"^:e!\S+ WALLOPS :restart soon$")]),
    "invisible +i": ({}, [
        ("e", "MODE e +i", r"MODE e \+i"), ("a", "WHO *", r" 315 "), ("a", None, "! e H"),
        ("a", "LUSERS", r" 251 a :There are 2 users and 1 invisible")]),
    # --- WHO, WHOWAS, LUSERS, INFO ---------------------------------------------------------------
    "WHO masks, flags and prefixes": ({}, [
        ("b", "AWAY :zzz", r" 306 "), ("e", "WHO #c", r" 352 e #c a \S+ \S+ a H@ :0 a Test$"),
        ("e", None, r" 352 e #c b \S+ \S+ b G :0 b Test$"),
        ("e", "WHO ?", r" 352 e \* "), ("e", None, r" 315 e \? :")]),
    "WHOX 354": ({}, [("e", "WHO #c %tcnfr,7", r" 354 e 7 #c a H@ :a Test$")]),
    "WHOWAS 314 312 369": ({}, [
        ("b", "QUIT :bye", None), ("a", None, r"QUIT"),
        ("a", "WHOWAS b 1", r" 314 a b b 127\.0\.0\.1 \* :b Test$"),
        ("a", None, r" 312 a b \S+ :"), ("a", None, r" 369 a b :")]),
    "LUSERS in full": ({}, [
        ("e", "OPER admin hunter2", r" 381 "), ("a", "LUSERS", r" 251 a :"),
        ("a", None, r" 252 a 1 :"), ("a", None, r" 254 a 1 :"), ("a", None, r" 255 a :"),
        ("a", None, r" 265 a 3 3 :"), ("a", None, r" 266 a 3 3 :")]),
    "INFO 371 374": ({}, [("a", "INFO", r" 371 a :"), ("a", None, r" 374 a :")]),
    # --- IRCv3 ---------------------------------------------------------------------------------
    "away-notify": ({"a": ("away-notify",)}, [
        ("b", "AWAY :lunch", r" 306 "), ("a", None, r"^:b!\S+ AWAY :lunch$"),
        ("b", "AWAY", r" 305 "), ("a", None, r"^:b!\S+ AWAY$")]),
    "extended-join": ({"a": ("extended-join",)}, [
        ("e", "JOIN #c", None), ("a", None, r"^:e!\S+ JOIN #c \* :e Test$")]),
    "setname and FAIL": ({"a": ("setname",), "b": ("setname",)}, [
        ("b", "SETNAME :Bee", r"^:b!\S+ SETNAME :Bee$"), ("a", None, r"^:b!\S+ SETNAME :Bee$"),
        ("b", "SETNAME :", r"^:\S+ FAIL SETNAME INVALID_REALNAME :")]),
    "chghost": ({"a": ("chghost",)}, [
        ("e", "OPER admin hunter2", r" 381 "), ("e", "CHGHOST b bee cloak.test", r"NOTICE e"),
        ("a", None, r"^:b!b@127\.0\.0\.1 CHGHOST bee cloak\.test$"),
        ("a", "WHO b", r" 352 a \* bee cloak\.test ")]),
    "cap-notify offered": ({}, [
        ("e", "CAP LS 302", r"CAP e LS :.*cap-notify.*labeled-response.*standard-replies")]),
    "labeled-response": ({"a": ("labeled-response", "batch")}, [
        ("a", "@label=q1 PONG x", r"^@label=q1 :\S+ ACK$"),
        ("a", "@label=q2 MODE #c", r"^@label=q2 :\S+ BATCH \+l1 labeled-response$"),
        ("a", None, r"^@batch=l1 :\S+ 324 "), ("a", None, r"^:\S+ BATCH -l1$")]),
    # --- client tags ---------------------------------------------------------------------------
    "client tags on PRIVMSG and NOTICE": ({"b": ("message-tags",)}, [
        ("a", "@+draft/reply=12 PRIVMSG #c :re", None),
        ("b", None, r"^@\+draft/reply=12;msgid=\d+ :a!\S+ PRIVMSG #c :re$"),
        ("a", "@+x=1 NOTICE b :n", None), ("b", None, r"^@\+x=1;msgid=\d+ :a!\S+ NOTICE b :n$")]),
    "TAGMSG relayed, not to plain clients": ({"b": ("message-tags",)}, [
        ("e", "JOIN #c", r"JOIN #c"), ("a", "@+typing=active TAGMSG #c", None),
        ("b", None, r"^@\+typing=active;msgid=\d+ :a!\S+ TAGMSG #c$"),
        ("e", None, "!TAGMSG")]),
    "TAGMSG echo carries the same msgid": (
        {"a": ("message-tags", "echo-message"), "b": ("message-tags",)}, [
            ("a", "@+typing=paused TAGMSG b", r"^@\+typing=paused;msgid=(\d+) :a!\S+ TAGMSG b$"),
            ("b", None, r"^@\+typing=paused;msgid=\d+ :a!\S+ TAGMSG b$")]),
    "TAGMSG is not kept in history": (
        {"a": ("message-tags", "batch", "draft/chathistory", "draft/event-playback")}, [
            ("b", "@+typing=active TAGMSG #c", None),
            ("a", "CHATHISTORY LATEST #c * 10", r"BATCH -"), ("a", None, "!TAGMSG")]),
    "417 for an over-long client tag section": ({}, [
        ("a", "@+big=" + "x" * 4100 + " TAGMSG #c", r" 417 a :"),
        ("a", "PING alive", r"PONG \S+ alive")]),
}


async def _start(make_server: MakeServer, irc: Connect,
                 caps: dict[str, tuple[str, ...]]) -> dict[str, IrcClient]:
    app = await make_server(oper=(OPER,), presence_interval=0)  # presence lines at once
    clients = {nick: await irc(app, nick, caps.get(nick, ())) for nick in ("a", "b", "e")}
    a, b = clients["a"], clients["b"]
    a.send("JOIN #c")
    await a.expect(r" 366 a #c ")
    b.send("JOIN #c")
    await b.expect(r" 366 b #c ")
    await a.expect(r"JOIN #c")
    return clients


async def _step(client: IrcClient, line: str | None, pattern: str | None, n: int) -> None:
    if line is not None:
        client.send(line)
    if pattern is None:
        return
    if pattern.startswith("!"):
        client.send(f"PING sync{n}")
        seen = await client.lines_until(rf"PONG \S+ sync{n}$")
        assert not [text for text in seen if re.search(pattern[1:], text)], seen
    else:
        await client.expect(pattern)


@pytest.mark.parametrize("name", list(CASES))
async def test_channel_rule(name: str, make_server: MakeServer, irc: Connect) -> None:
    """One rule of issue 11 over a socket (the case's name says which)."""
    caps, steps = CASES[name]
    clients = await _start(make_server, irc, caps)
    for n, (who, line, pattern) in enumerate(steps):
        await _step(clients[who], line, pattern, n)


async def test_empty_realname_461(make_server: MakeServer, irc: Connect) -> None:
    """USER with an empty realname gets 461 and registration waits for a proper one."""
    app = await make_server()
    client = await irc(app)
    client.send("NICK x", "USER x 0 * :")
    await client.expect(r" 461 x USER :")
    client.send("USER x 0 * :X")
    await client.expect(r" 001 x ")


async def test_killed_connection_is_closed(make_server: MakeServer, irc: Connect) -> None:
    """A KILLed client's socket is closed after its ERROR; the nick is free again."""
    app = await make_server(oper=(OPER,))
    oper, victim = await irc(app, "oper"), await irc(app, "victim")
    oper.send("OPER admin hunter2", "KILL victim :bye")
    lines = await victim.until_closed()
    assert lines[-1].startswith("ERROR :Closing Link:")
    assert app.engine.find_user("victim") is None
    assert app.stats.irc.reaps["killed"] == 1
    await irc(app, "victim")
