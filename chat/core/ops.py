"""Op: one replicated change of the hub, and the events it stores (pure).

An engine orders Ops and every node applies them in that order (:meth:`Hub.apply`).  The
events an Op *stores* (in a room's history or an HTTP user's inbox) are a function of the
Op alone, :func:`op_events`, so a shared store can keep them as it orders the Op.  What an
Op only *pushes* - typing notices, away and realname changes, invitations offered to
operators, the server's operator hand-over - is made by its applier from the Op and the
state every node shares, and never stored.
"""

from __future__ import annotations

from typing import NamedTuple

from .events import Event
from .sharing import shared


class Op(NamedTuple):
    """One replicated change, proposed where it was asked for.

    The engine gives it ``ids`` consecutive event ids (the first is passed to
    :meth:`chat.core.hub.Hub.apply`), then every node applies it, in order, with the same
    result.  Every field is a string, a float or a tuple of strings: it is serialized.
    ``args`` by kind: register ``(user, host, realname, transport, node, token_hash)``;
    quit and rename the rooms whose members are told; join ``(realname,)``; message,
    notice and tagmsg the client tags as ``(name, value, ...)``; tell ``(event kind,
    *tags)``; away ``("1" or "",)``; mode ``(modes, *params)``; kick ``(nick,)``; invite
    ``(channel,)``; umode ``(added, removed)``; oper ``(oper name,)``; kill ``(the
    victim's user@host, *its rooms)``; chghost ``(user, host)``.
    """

    kind: str            # see APPLY in chat.core.hub for every kind
    actor: str           # nick of who does it
    target: str          # channel, recipient, new nick, or ""
    text: str            # text, reason, topic, away message
    ts: float            # wall-clock seconds at the proposing node
    userhost: str = ""   # the actor's user@host when proposed (it is in its events)
    args: tuple[str, ...] = ()
    ids: int = 1         # event ids it consumes

    def to_list(self) -> list[object]:
        """A JSON-ready form (see :func:`op_from_list`)."""
        return [self.kind, self.actor, self.target, self.text, self.ts, self.userhost,
                list(self.args), self.ids]


def op_from_list(data: list[object]) -> Op:
    """The Op of :meth:`Op.to_list` (raises ValueError/TypeError for anything else)."""
    kind, actor, target, text, ts, userhost, args, ids = data
    if not isinstance(args, list) or not isinstance(ts, int | float):
        raise ValueError("malformed op")
    return Op(str(kind), str(actor), str(target), str(text), float(ts), str(userhost),
              tuple(str(a) for a in args), int(ids))  # type: ignore[call-overload]


def tag_dict(flat: tuple[str, ...]) -> dict[str, str] | None:
    """``("+a", "1", "+b", "")`` -> ``{"+a": "1", "+b": ""}``; None when there are none."""
    return dict(zip(flat[::2], flat[1::2], strict=True)) if flat else None


def kill_reason(op: Op) -> str:
    """The QUIT text of a kill: ``Killed (<killer> (<reason>))`` (modern.ircdocs.horse)."""
    return f"Killed ({op.actor} ({op.text}))"


def op_events(op: Op, first_id: int) -> list[Event]:
    """The events ``op`` stores, numbered from ``first_id`` (a function of the Op alone)."""
    kind, actor, ts, userhost = op.kind, op.actor, op.ts, op.userhost
    if kind in ("message", "notice"):
        return [Event(op.target, first_id, ts, kind, actor, userhost, op.text, (),
                      tag_dict(op.args))]
    if kind in ("part", "topic"):
        return [Event(op.target, first_id, ts, kind, actor, userhost, op.text)]
    if kind == "join":
        # One (realname,) for the JOINs of equal realnames kept in history (48 bytes each).
        return [Event(op.target, first_id, ts, kind, actor, userhost, "", shared(op.args[:1]))]
    if kind == "quit":
        return [Event(room, first_id + i, ts, "quit", actor, userhost, op.text)
                for i, room in enumerate(op.args)]
    if kind == "rename":
        return [Event(room, first_id + i, ts, "nick", actor, userhost, op.target)
                for i, room in enumerate(op.args)]
    if kind == "tell" and op.args[0] != "tagmsg":
        return [Event(op.target, first_id, ts, op.args[0], actor, userhost, op.text, (),
                      tag_dict(op.args[1:]))]
    return _moderation_events(op, first_id)


def _moderation_events(op: Op, first_id: int) -> list[Event]:
    kind, actor, ts, userhost = op.kind, op.actor, op.ts, op.userhost
    if kind == "mode":
        return [Event(op.target, first_id, ts, "mode", actor, userhost, op.args[0],
                      op.args[1:])]
    if kind == "kick":
        return [Event(op.target, first_id, ts, "kick", actor, userhost, op.text, op.args)]
    if kind == "invite":  # to the invited user (kept in an HTTP user's inbox)
        return [Event(op.target, first_id, ts, "invite", actor, userhost, "", op.args)]
    if kind == "kill":  # the victim's QUITs, then the KILL it is sent
        victim_userhost, rooms = op.args[0], op.args[1:]
        reason = kill_reason(op)
        quits = [Event(room, first_id + i, ts, "quit", op.target, victim_userhost, reason)
                 for i, room in enumerate(rooms)]
        return [*quits, Event(op.target, first_id + len(rooms), ts, "kill", actor, userhost,
                              op.text)]
    return []
