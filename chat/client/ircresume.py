"""irc mode's resume after a reconnect: rejoin, replay with CHATHISTORY, merge (no I/O).

Every room is rejoined and ``CHATHISTORY AFTER #room msgid=<cursor>`` replays what was
missed; live events for a room arriving meanwhile are held and merged with the replay, so
nothing is lost or shown twice (a replayed room's copy of a QUIT or NICK already shown
live is recognised by the transport's :class:`~chat.client.presence.FanOut`).  A server
restart (ids restart) is recognised by a changed ``003`` creation line or by our JOIN
getting an id not above the cursor; then the room replays from the new run's start
(``LATEST``), and the run the cursors belong to (the HTTP ``epoch``) is no longer known.

:class:`Resume` keeps that bookkeeping for one :class:`~chat.client.base.Transport`: it
shows events through the transport's ``_deliver``/``_emit``/``_notice`` and sends lines
through the ``send`` function it is given (``send("JOIN", "#room")``).
"""

from __future__ import annotations

from collections.abc import Callable

from .base import Transport
from .model import RESTARTED, ChatEvent

SendLine = Callable[..., None]


class Resume:
    """Resync state of one irc-mode transport, kept across its connections."""

    __slots__ = ("owner", "send", "history", "history_limit", "created", "restarted",
                 "batches", "resyncing", "held")

    def __init__(self, owner: Transport, send: SendLine) -> None:
        self.owner = owner
        self.send = send
        self.history = False         # the server offers chathistory (set by begin)
        self.history_limit = 100     # events per CHATHISTORY request (ISUPPORT)
        self.created: str | None = None   # the 003 line: changes when the server restarts
        self.restarted = False
        self.batches: dict[str, tuple[str, list[ChatEvent]]] = {}  # ref -> (room, events)
        self.resyncing: dict[str, list[ChatEvent]] = {}   # room -> live events held
        self.held: list[ChatEvent] = []                    # room-less live events held

    # --- what registration tells -----------------------------------------------------------
    def receive_created(self, text: str) -> None:
        """The ``003`` line: a different one than last time means a new server run."""
        if self.created is not None and text != self.created:
            self.restarted = True
        self.created = text

    def receive_isupport(self, tokens: list[str]) -> None:
        """``005`` tokens: ``CHATHISTORY=<n>`` sets how many events one request asks for."""
        for token in tokens:
            name, _, value = token.partition("=")
            if name.upper() in ("CHATHISTORY", "DRAFT/CHATHISTORY") and value.isascii() \
                    and value.isdigit():
                self.history_limit = max(1, int(value))

    # --- the resync ------------------------------------------------------------------------
    def begin(self, history: bool) -> None:
        """Rejoin every room, holding live events until each room's replay is in."""
        self.history = history
        if self.restarted:
            self._restart_noticed(ids_restarted=False)
        rooms = self.owner.rooms
        for room in rooms:
            self.resyncing[room] = []
        for room in rooms:
            key = self.owner.keys.get(room)
            self.send("JOIN", "#" + room, *([key] if key else []))

    def receive_own_join(self, room: str, join_id: int) -> None:
        """Our JOIN of ``room`` (event id ``join_id``) is back: ask for what was missed."""
        if room not in self.resyncing:
            return
        cursor = self.owner.cursors.get(room)
        if cursor is None:
            self.end(room)  # nothing seen yet in this room: start from now
            return
        if join_id and join_id <= cursor:  # ids went backwards: a new server run
            self._restart_noticed(ids_restarted=True)
            cursor = 0
        if not self.history:
            self.owner._notice(f"#{room}: the server keeps no history; messages sent while "
                               "disconnected are lost")
            self.end(room)
            return
        self._request_history(room, cursor)

    def receive_batch(self, ref: str, kind: str, target: str) -> None:
        """``BATCH +ref kind target`` opens a history batch, ``BATCH -ref`` closes it."""
        if ref.startswith("+") and kind.lower().endswith("chathistory"):
            self.batches[ref[1:]] = (target[1:] if target.startswith("#") else target, [])
        elif ref.startswith("-") and ref[1:] in self.batches:
            room, events = self.batches.pop(ref[1:])
            self._replay(room, events)

    def batch(self, ref: str | None) -> tuple[str, list[ChatEvent]] | None:
        """The open history batch ``ref`` names as ``(room, events)``; None if not one."""
        return self.batches.get(ref) if ref is not None else None

    def receive_live(self, event: ChatEvent) -> None:
        """A live event: held while its room (or, room-less, any room) resyncs; else shown."""
        if event.room in self.resyncing:
            self.resyncing[event.room].append(event)
        elif not event.room and not event.to and self.resyncing:
            self.held.append(event)
        else:
            self.owner._deliver(event)

    def history_failed(self, reason: str) -> None:
        """The server refused a CHATHISTORY: show what each room has and stop waiting."""
        self.owner._notice("history replay refused: " + reason)
        for room in list(self.resyncing):
            self.end(room)

    def forget(self, room: str) -> None:
        """``room`` was left: nothing more to replay for it."""
        self.resyncing.pop(room, None)

    def connection_lost(self) -> None:
        """Batches do not survive a connection."""
        self.batches.clear()

    def end(self, room: str) -> None:
        """Show the replayed and held events of ``room`` once each, in id order."""
        owner = self.owner
        merged: dict[int, ChatEvent] = {}
        unnumbered: list[ChatEvent] = []
        for event in self.resyncing.pop(room, []):
            if event.id:
                merged.setdefault(event.id, event)
            else:
                unnumbered.append(event)
        for event_id in sorted(merged):
            owner._deliver(merged[event_id])
        for event in unnumbered:
            owner._emit(event)
        if not self.resyncing and self.held:
            held, self.held = self.held, []
            for event in held:
                owner._deliver(event)

    # --- helpers -----------------------------------------------------------------------------
    def _restart_noticed(self, ids_restarted: bool) -> None:
        """A new server run (once per run).  Our server's ids never repeat, so the cursors
        stay; only a server whose ids went backwards makes every room replay from its
        start."""
        self.restarted = False
        owner = self.owner
        if any(owner.cursors.get(room) for room in owner.rooms):
            if ids_restarted:
                owner.cursors.restarted()
                owner._notice("the server restarted: replaying each room from its start")
            else:
                owner.cursors.new_run()
                owner._notice(RESTARTED)

    def _request_history(self, room: str, cursor: int) -> None:
        limit = str(self.history_limit)
        if cursor > 0:
            self.send("CHATHISTORY", "AFTER", "#" + room, f"msgid={cursor}", limit)
        else:
            self.send("CHATHISTORY", "LATEST", "#" + room, "*", limit)

    def _replay(self, room: str, events: list[ChatEvent]) -> None:
        """One history batch: merge it with the live events held for ``room``."""
        held = self.resyncing.get(room)
        if held is None:  # a batch nobody is waiting for: just show what is new
            for event in sorted(events, key=_event_id):
                self.owner._deliver(event)
            return
        held.extend(events)
        if len(events) >= self.history_limit:  # there may be more: ask for the next page
            self._request_history(room, max(e.id for e in events))
        else:
            self.end(room)


def _event_id(event: ChatEvent) -> int:
    return event.id
