"""IRCv3 ``draft/chathistory``: CHATHISTORY BEFORE/AFTER/LATEST/AROUND/BETWEEN/TARGETS (pure).

It lets a client resume after a reconnect: the ids are the hub's event ids, so
``msgid=<id>`` names the same event as the API's ``id``.  Replies are wrapped in a
``chathistory`` batch when the client enabled ``batch``.
"""

from __future__ import annotations

from ...core.clock import Now
from ...core.events import Event
from ..caps import CAP_BATCH, CAP_EVENT_PLAYBACK, CHATHISTORY_MAX
from ..events import batched_event
from ..history import SUBCOMMANDS, HistoryError, Ref, parse_limit, parse_ref, select
from ..message import Message, format_line, server_time
from ..session import Session
from .table import Command

ONE_REF = ("TARGETS", "BEFORE", "AFTER", "LATEST", "AROUND")  # take 4 parameters; BETWEEN 5


def _fail(s: Session, code: str, *context: str) -> None:
    s.fail("CHATHISTORY", code, *context)


def _parse(params: list[str], sub: str) -> tuple[list[Ref], int]:
    """The references and the limit of a query (raises HistoryError)."""
    if sub == "TARGETS":
        refs = [parse_ref(params[1]), parse_ref(params[2])]
        limit = parse_limit(params[3], CHATHISTORY_MAX)
    else:
        refs = [parse_ref(params[2], star=sub == "LATEST")]
        if sub == "BETWEEN":
            refs.append(parse_ref(params[3]))
        limit = parse_limit(params[4 if sub == "BETWEEN" else 3], CHATHISTORY_MAX)
    if any(r.kind == "*" for r in refs[1:]):
        raise HistoryError("INVALID_PARAMS", "'*' is only allowed with LATEST")
    return refs, limit


def cmd_chathistory(s: Session, msg: Message, now: Now) -> None:
    params = msg.params
    sub = params[0].upper()
    if sub not in SUBCOMMANDS:
        _fail(s, "UNKNOWN_COMMAND", sub[:32], "Unknown command")
        return
    if len(params) < (4 if sub in ONE_REF else 5):
        _fail(s, "INVALID_PARAMS", sub, "Not enough parameters")
        return
    try:
        refs, limit = _parse(params, sub)
    except HistoryError as exc:
        _fail(s, exc.code, sub, exc.description)
        return
    batch = None
    if s.caps & CAP_BATCH:
        s.batches += 1
        batch = f"h{s.batches}"
    if sub == "TARGETS":
        _send_targets(s, refs, limit, batch)
        return
    target = params[1]
    if not _may_read(s, target):  # as over HTTP (403 not_joined): members only
        _fail(s, "INVALID_TARGET", sub, target[:64], "Join the channel to read its history")
        return
    kinds = None if s.caps & CAP_EVENT_PLAYBACK else frozenset({"message", "notice"})
    events = select(_history_of(s, target), sub, refs, limit, kinds)
    if batch is not None:
        s.send("BATCH", f"+{batch}", "chathistory", target)
    for event in events:
        s.send_bytes(batched_event(event, s.variant, batch))
    if batch is not None:
        s.send("BATCH", f"-{batch}")


def _may_read(s: Session, target: str) -> bool:
    """A channel's history is for its members; a nick's is our own messages with it."""
    if not target.startswith("#"):
        return True
    room = s.engine.find_room(target)
    return room is not None and s.user is not None and s.user.key in room.members


def _history_of(s: Session, target: str) -> list[Event]:
    """A channel's log, or the private messages ``target`` sent us that the hub kept."""
    if target.startswith("#"):
        room = s.engine.find_room(target)
        return list(room.log.events) if room is not None else []
    assert s.user is not None
    found = s.engine.find_user(target)
    nick = found.nick if found is not None else target
    return [e for e in s.user.inbox.events if e.nick == nick]


def _send_targets(s: Session, refs: list[Ref], limit: int, batch: str | None) -> None:
    """TARGETS: our channels with messages between the two timestamps, by latest message."""
    low, high = sorted(r.value for r in refs)
    assert s.user is not None
    found: list[tuple[float, str]] = []
    for room in s.user.rooms:
        times = [e.ts for e in room.log.events
                 if e.kind in ("message", "notice") and low <= e.ts <= high]
        if times:
            found.append((max(times), room.name))
    found.sort()
    if batch is not None:
        s.send("BATCH", f"+{batch}", "draft/chathistory-targets")
    for ts, name in found[:limit]:
        tags = {"batch": batch} if batch is not None else None
        s.send_line(format_line("CHATHISTORY", "TARGETS", name, f"timestamp={server_time(ts)}",
                                source=s.info.name, tags=tags))
    if batch is not None:
        s.send("BATCH", f"-{batch}")


COMMANDS = {"CHATHISTORY": Command(cmd_chathistory, 1)}
