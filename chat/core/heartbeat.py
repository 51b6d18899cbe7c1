"""Heartbeat deadlines for one long connection (pure: the caller passes ``now``).

Three limits, each disabled by ``0``:

* registration timeout: NICK/USER not completed within it after connecting;
* ping: a registered connection silent for ``ping_interval`` is sent a PING, and anything
  received within ``ping_timeout`` answers it (0 there: a PING never times out);
* idle timeout: no command other than PING/PONG for that long.

Activity only updates timestamps; :attr:`Heartbeat.deadline` is moved lazily by
:meth:`Heartbeat.check`, so the adapter can test ``deadline <= now`` for many connections
in one sweep (or keep one ``call_at`` per connection) without rescheduling on every line.
"""

from __future__ import annotations

import enum
import math

NEVER = math.inf


class Beat(enum.Enum):
    """What :meth:`Heartbeat.check` asks the adapter to do."""

    NOTHING = "nothing"
    SEND_PING = "send_ping"
    REGISTRATION_TIMEOUT = "registration_timeout"
    PING_TIMEOUT = "ping_timeout"
    IDLE_TIMEOUT = "idle_timeout"


class HeartbeatPolicy:
    """The four limits (seconds), shared by every connection of a server."""

    __slots__ = ("registration_timeout", "ping_interval", "ping_timeout", "idle_timeout")

    def __init__(self, registration_timeout: float, ping_interval: float,
                 ping_timeout: float, idle_timeout: float) -> None:
        self.registration_timeout = registration_timeout
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.idle_timeout = idle_timeout

    def shortest(self) -> float:
        """The smallest enabled limit (NEVER if all are disabled), to size a sweep tick."""
        enabled = [v for v in (self.registration_timeout, self.ping_interval,
                               self.ping_timeout, self.idle_timeout) if v > 0]
        return min(enabled, default=NEVER)


class Heartbeat:
    """Deadlines of one connection.  ``deadline`` is when :meth:`check` next has work."""

    # No "connected": until registration the deadline is the connect time plus the
    # registration timeout and nothing moves it (24 bytes less per connection).
    __slots__ = ("policy", "registered", "last_received", "last_active", "ping_sent",
                 "deadline")

    def __init__(self, policy: HeartbeatPolicy, now: float) -> None:
        self.policy = policy
        self.registered = False
        self.last_received = now   # any line
        self.last_active = now     # any command but PING/PONG
        self.ping_sent: float | None = None  # when the unanswered PING went out
        timeout = policy.registration_timeout
        self.deadline = now + timeout if timeout > 0 else NEVER

    def received(self, now: float) -> None:
        """A line arrived: it answers any outstanding PING.

        The answer to a PING moves the deadline back from the ping timeout to the next
        ping (when ``ping_timeout`` is longer than ``ping_interval`` the next PING would
        otherwise wait for the old timeout); any other line leaves it to :meth:`check`.
        """
        self.last_received = now
        if self.ping_sent is not None:
            self.ping_sent = None
            if self.registered:
                self.deadline = self._next_deadline()

    def active(self, now: float) -> None:
        """A command other than PING/PONG was processed."""
        self.last_active = now

    def register(self, now: float) -> None:
        """Registration completed: the ping and idle clocks start now."""
        self.registered = True
        self.last_received = self.last_active = now
        self.ping_sent = None
        self.deadline = self._next_deadline()

    def check(self, now: float) -> Beat:
        """The action due at ``now`` (at most one), moving ``deadline`` past it.

        After SEND_PING the ping is counted as sent at ``now``.  After a *_TIMEOUT the
        connection is expected to close; ``deadline`` is then NEVER.
        """
        policy = self.policy
        if not self.registered:
            if now >= self.deadline:  # connected + registration_timeout (NEVER: off)
                self.deadline = NEVER
                return Beat.REGISTRATION_TIMEOUT
            return Beat.NOTHING
        beat = Beat.NOTHING
        if (self.ping_sent is not None and policy.ping_timeout > 0
                and now >= self.ping_sent + policy.ping_timeout):
            beat = Beat.PING_TIMEOUT
        elif policy.idle_timeout > 0 and now >= self.last_active + policy.idle_timeout:
            beat = Beat.IDLE_TIMEOUT
        if beat is not Beat.NOTHING:
            self.deadline = NEVER
            return beat
        if (self.ping_sent is None and policy.ping_interval > 0
                and now >= self.last_received + policy.ping_interval):
            self.ping_sent = now
            beat = Beat.SEND_PING
        self.deadline = self._next_deadline()
        return beat

    def silent_for(self, now: float) -> int:
        """Whole seconds since the last line (for the ``Ping timeout: N seconds`` reason)."""
        return max(0, round(now - self.last_received))

    def _next_deadline(self) -> float:
        policy = self.policy
        deadline = NEVER
        if self.ping_sent is not None:
            if policy.ping_timeout > 0:
                deadline = self.ping_sent + policy.ping_timeout
        elif policy.ping_interval > 0:
            deadline = self.last_received + policy.ping_interval
        if policy.idle_timeout > 0:
            deadline = min(deadline, self.last_active + policy.idle_timeout)
        return deadline
