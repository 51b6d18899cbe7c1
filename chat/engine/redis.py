"""The Redis engine: several ``chat serve`` processes, one chat (``--engine redis://...``).

Each process (a *node*) keeps the whole chat state in its own :class:`~chat.core.hub.Hub`,
and every change goes through Redis first: :meth:`RedisEngine.submit` checks a request
against the local state, then one Lua script (:data:`~chat.engine.SUBMIT`) claims the
nick if needed, numbers the Op from the one id counter, appends it to the replication log
and its events to the room histories, and publishes it.  Every node - the proposer too -
applies the Ops in log order as they are announced, so all hubs agree, fan-out stays local
to each node, and one publish per event is all that crosses the network.  The proposer's
Pending settles when it applies its own Op.

Other duties, each on one timer: a node key with a TTL says this node is alive; the leader
(one node at a time, by a key with a TTL) writes hub snapshots so new nodes start from one,
trims the log, gives up the users of nodes whose key expired (a QUIT ``Node lost``) and
expires idle HTTP sessions.  If Redis goes away, writes fail with ``engine_unavailable``
(IRC 440, HTTP 503) and the engine reconnects with backoff, then catches up from the log.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections.abc import Iterable
from typing import Any, TypeVar

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from ..core.errors import EngineUnavailable, HubError, NickInUse
from ..core.hub import EventLog, Op, Sink
from ..core.names import casefold
from ..core.pending import Pending
from ..core.snapshot import restore, snapshot
from .memory import ID_BASE, LEAVING, MemoryEngine
from .store import (
    EXPIRED,
    RENEW,
    SUBMIT,
    TOUCH,
    Announced,
    claims,
    from_log_entry,
    history_entries,
    loaded_event,
    op_json,
    parse_announcement,
    snapshot_json,
    stream_key,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
LOG_MAXLEN = 100_000      # Ops kept in the replication log (a node down longer must restart)
SNAPSHOT_EVERY = 10.0     # seconds between the leader's snapshots (when something changed)
BATCH = 512               # Ops sent per pipeline
BACKOFF = (0.1, 5.0)      # reconnect delay: first, most
EWMA = 0.2                # weight of a new sample in the round-trip averages


class RedisEngine(MemoryEngine):
    """The engine for several nodes on one Redis (satisfies :class:`chat.engine.base.Engine`)."""

    local_session_expiry = False
    replicated = True

    def __init__(self, url: str, *, prefix: str = "chat", node_timeout: float = 10.0,
                 session_timeout: float = 60.0, history: int = 1000, nicklen: int = 30,
                 channellen: int = 64, topiclen: int = 390, max_channels: int = 50,
                 server_name: str = "chat.local") -> None:
        super().__init__(history=history, nicklen=nicklen, channellen=channellen,
                         topiclen=topiclen, max_channels=max_channels, server_name=server_name)
        self.hub.keep_dormant = True
        self.hub.own_nicks = False  # Redis's nick claims decide (see SUBMIT)
        self.url = url
        self.prefix = prefix
        self.node = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(2)}"
        self.node_timeout = node_timeout
        self.session_timeout = session_timeout
        self.redis: aioredis.Redis | None = None
        self.connected = False
        self.closing = False       # close() has begun: every loop ends
        self.applied = "0-0"       # the log position this hub has applied up to
        self.requests: dict[str, tuple[Pending[Any], Sink | None, float]] = {}
        self.outbox: list[tuple[str, list[str], Op]] = []
        self.wake = asyncio.Event()
        self.buffer: list[Announced] | None = []  # announcements during catch-up
        self.tasks: list[asyncio.Task[None]] = []
        self.leader = False
        self.alive: set[str] = set()
        self.reaping: set[str] = set()
        self.changed = False       # Ops applied since the last snapshot
        self.reap_after = 0.0      # no reaping before then: other nodes must get a chance
                                   # to refresh their keys after Redis came back
        self.last_snapshot = 0.0
        self.seq_req = 0
        self.syncs: list[tuple[tuple[int, int], Pending[None]]] = []
        self.leaving: set[str] = set()  # requests that are QUITs/PARTs: kept across outages
        self.stats = {"ops_submitted": 0, "ops_applied": 0, "ops_failed": 0,
                      "reconnects": 0, "catchups": 0, "redis_errors": 0,
                      "publish_rtt_ms": 0.0, "pubsub_lag_ms": 0.0}

    # --- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        """Connect, bring the hub up to date from Redis, then follow the log."""
        await self._connect()
        self.tasks = [asyncio.create_task(self._write_loop(), name="engine-writer"),
                      asyncio.create_task(self._tick_loop(), name="engine-ticker")]
        log.info("engine: node %s on %s (prefix %r, epoch %d)", self.node, self.url,
                 self.prefix, self.epoch)

    async def close(self) -> None:
        """Send what is queued, wait (briefly) for it to apply, then leave."""
        deadline = time.monotonic() + 2.0
        while (self.outbox or self.requests) and self.connected and \
                time.monotonic() < deadline:
            self.wake.set()
            await asyncio.sleep(0.01)
        self.closing = True
        for task in self.tasks:
            task.cancel()
        if self.tasks:  # redis-py may turn a cancellation into its own error: do not wait
            await asyncio.wait(self.tasks, timeout=1.0)  # for a loop that swallowed it
        self.tasks.clear()
        redis = self.redis
        if redis is not None:
            try:
                if self.leader:
                    await self._write_snapshot(redis)
                await redis.delete(self._key(f"node:{self.node}"))
                await redis.eval(
                    "if redis.call('GET', KEYS[1]) == ARGV[1] then "
                    "return redis.call('DEL', KEYS[1]) end return 0",
                    1, self._key("leader"), self.node)
            except RedisError:
                pass
            await redis.aclose()
        self.connected = False

    def _key(self, name: str) -> str:
        return f"{self.prefix}:{name}"

    async def _connect(self) -> None:
        """One connection for commands, one for the announcements; then catch up."""
        redis = aioredis.Redis.from_url(self.url, decode_responses=True,
                                        socket_connect_timeout=2.0, socket_timeout=5.0)
        pubsub: Any = redis.pubsub(ignore_subscribe_messages=True)
        try:
            await self._follow(redis, pubsub)
        except BaseException:
            await pubsub.aclose()
            await redis.aclose()
            raise
        self.redis = redis
        self.tasks.append(asyncio.create_task(self._listen(pubsub), name="engine-listener"))
        self.reap_after = time.monotonic() + self.node_timeout
        self.connected = True

    async def _follow(self, redis: aioredis.Redis, pubsub: Any) -> None:
        """Subscribe, then bring the hub up to date (announcements wait in the socket)."""
        await redis.ping()
        born = int(time.time() * 1000)
        if await redis.set(self._key("epoch"), born, nx=True):  # a new (or wiped) store:
            await redis.set(self._key("seq"), born * ID_BASE, nx=True)  # ids never repeat
        self.epoch = self.hub.epoch = int(await redis.get(self._key("epoch")) or 0)
        self.submit_script = redis.register_script(SUBMIT)
        self.touch_script = redis.register_script(TOUCH)
        self.expired_script = redis.register_script(EXPIRED)
        self.renew_script = redis.register_script(RENEW)
        await self._heartbeat(redis)
        await pubsub.subscribe(self._key("ops"))
        self.buffer = []
        if self.applied == "0-0":
            await self._bootstrap(redis)
        await self._catch_up(redis)

    async def _bootstrap(self, redis: aioredis.Redis) -> None:
        """Start from the newest snapshot and the room histories in Redis."""
        raw = await redis.get(self._key("snapshot"))
        if raw:
            data = orjson.loads(raw)
            restore(self.hub, data["state"])
            self.applied = data["log"]
        await self._load_histories(redis)
        self.hub.seq = max(self.hub.seq, int(await redis.get(self._key("seq")) or 0))

    async def _load_histories(self, redis: aioredis.Redis) -> None:
        """Fill each room's log (or a dormant log) from its history stream."""
        hub = self.hub
        async for key in redis.scan_iter(match=self._key("h:*"), count=500):
            room_key = key[len(self._key("h:")):]
            log_ = self._stored_log(await self._entries(redis.xrevrange(key, count=hub.history)))
            room = hub.rooms.get(room_key)
            if room is not None:
                room.log = log_
            elif len(hub.dormant) < 4096:
                hub.dormant[room_key] = log_
        for user in hub.users.values():
            if user.transport == "http":
                entries = await self._entries(
                    redis.xrevrange(self._key("i:" + user.key), count=hub.history))
                user.inbox = self._stored_log(entries)

    @staticmethod
    async def _entries(call: Any) -> list[tuple[str, dict[str, str]]]:
        """A stream range's entries (redis-py types them loosely)."""
        entries: list[tuple[str, dict[str, str]]] = await call or []
        return entries

    def _stored_log(self, entries: list[tuple[str, dict[str, str]]]) -> EventLog:
        """An EventLog holding the stored events (newest first in ``entries``)."""
        events = [loaded_event(f["id"], f["e"]) for _sid, f in reversed(entries)]
        result = EventLog(self.hub.history, 0)
        # A full history may have lost older events: cursors before it are told so.
        floor = events[0].id - 1 if len(events) >= self.hub.history else 0
        result.load(events, floor)
        return result

    async def _catch_up(self, redis: aioredis.Redis) -> None:
        """Apply every logged Op after ``applied``, then what was announced meanwhile."""
        self.stats["catchups"] += 1
        while True:
            entries = await self._entries(
                redis.xrange(self._key("log"), min=f"({self.applied}", count=1000))
            for sid, fields in entries:
                self._apply(from_log_entry(sid, fields))
            if len(entries) < 1000:
                break
        buffered, self.buffer = self.buffer or [], None
        for item in buffered:
            self._announced(item)

    # --- following the log ----------------------------------------------------------------
    async def _listen(self, pubsub: Any) -> None:
        try:
            while not self.closing:
                message = await pubsub.get_message(timeout=1.0)
                if message is not None and message.get("type") == "message":
                    self._on_message(message["data"])
        except (RedisError, OSError) as exc:
            self._lost(exc)
        finally:
            try:
                await pubsub.aclose()
            except (RedisError, OSError):
                pass

    def _on_message(self, data: str) -> None:
        try:
            item = parse_announcement(data)
        except (ValueError, TypeError):  # not ours (another program on the channel?)
            log.error("engine: ignoring a malformed announcement %.120r", data)
            return
        self._announced(item)

    def _announced(self, item: Announced) -> None:
        """An Op was announced: apply it, or catch up first if one before it was missed."""
        if self.buffer is not None:
            self.buffer.append(item)
            return
        if stream_key(item.sid) <= stream_key(self.applied):
            return  # applied already (from the log)
        if item.prev != self.applied:
            self.buffer = [item]
            if self.redis is not None:
                self.tasks.append(asyncio.create_task(self._catch_up(self.redis)))
            return
        self._apply(item)

    def _apply(self, item: Announced) -> None:
        if stream_key(item.sid) <= stream_key(self.applied):
            return
        self.applied = item.sid
        self.changed = True
        self.stats["ops_applied"] += 1
        request = self.requests.pop(item.req, None) if item.node == self.node else None
        if request is not None:
            self.leaving.discard(item.req)
        sink = request[1] if request is not None else None
        try:
            result = self.hub.apply(item.op, item.first, sink)
        except Exception:
            log.exception("engine: applying %r failed", item.op)
            result = None
        if request is not None:
            rtt = (time.monotonic() - request[2]) * 1000
            self.stats["publish_rtt_ms"] += EWMA * (rtt - self.stats["publish_rtt_ms"])
            request[0].resolve(result)
        elif item.node != self.node:
            lag = max(0.0, (time.time() - item.op.ts) * 1000)
            self.stats["pubsub_lag_ms"] += EWMA * (lag - self.stats["pubsub_lag_ms"])
        if item.op.kind in ("quit", "kill"):
            self.reaping.discard(casefold(item.op.actor if item.op.kind == "quit"
                                          else item.op.target))
        if self.syncs:
            self._release_syncs()

    def _release_syncs(self) -> None:
        here = stream_key(self.applied)
        waiting = []
        for target, pending in self.syncs:
            if target <= here:
                pending.resolve(None)
            else:
                waiting.append((target, pending))
        self.syncs = waiting

    def sync(self) -> Pending[None]:
        """Settles once this hub has applied the log as far as Redis has it now."""
        pending: Pending[None] = Pending()
        if not self.connected or self.redis is None:
            pending.fail(EngineUnavailable("*", "Chat store unreachable, try again"))
            return pending
        task = asyncio.create_task(self._sync(self.redis, pending))
        self.tasks.append(task)
        task.add_done_callback(self._forget_task)
        return pending

    async def _sync(self, redis: aioredis.Redis, pending: Pending[None]) -> None:
        try:
            last = str(await redis.get(self._key("last")) or "0-0")
        except (RedisError, OSError) as exc:
            pending.fail(EngineUnavailable("*", "Chat store unreachable, try again"))
            self._lost(exc)
            return
        self.syncs.append((stream_key(last), pending))
        self._release_syncs()

    # --- writes ---------------------------------------------------------------------------
    def carry_out(self, op: Op, sink: Sink | None) -> Pending[Any]:
        """Redis orders the Op; it settles when this node applies it.

        While Redis is away every write is refused at once, except leaving (a QUIT, a PART):
        that waits in the queue and goes out after the reconnect, so a user whose
        connection closed meanwhile does not linger in every hub.
        """
        if not self.connected and op.kind not in LEAVING:
            return Pending.failed(EngineUnavailable("*", "Chat store unreachable, try again"))
        return self._send(op, sink)

    def _send(self, op: Op, sink: Sink | None = None) -> Pending[Any]:
        self.seq_req += 1
        req = str(self.seq_req)
        pending: Pending[Any] = Pending()
        self.requests[req] = (pending, sink, time.monotonic())
        if op.kind in LEAVING:
            self.leaving.add(req)
        owner = self.node if op.kind == "register" and op.args[3] != "http" else "http"
        claim, release = claims(op, owner)
        active = casefold_if(op.kind == "register" and op.args[3] == "http", op.actor)
        gone = casefold_if(op.kind == "quit", op.actor) or casefold_if(op.kind == "kill",
                                                                        op.target)
        args = [self.prefix, op_json(op), str(op.ids), claim, owner, release,
                self.node, req, str(self.hub.history), str(LOG_MAXLEN), active, gone,
                *history_entries(self.hub, op)]
        self.outbox.append((req, args, op))
        self.stats["ops_submitted"] += 1
        self.wake.set()
        return pending

    async def _write_loop(self) -> None:
        """Send queued Ops in pipelines, in order, on the one command connection."""
        while not self.closing:
            await self.wake.wait()
            self.wake.clear()
            while self.outbox and self.connected and self.redis is not None:
                batch, self.outbox = self.outbox[:BATCH], self.outbox[BATCH:]
                await self._send_batch(self.redis, batch)

    async def _send_batch(self, redis: aioredis.Redis,
                          batch: list[tuple[str, list[str], Op]]) -> None:
        try:
            async with redis.pipeline(transaction=False) as pipe:
                for _req, args, _op in batch:
                    await self.submit_script(args=args, client=pipe)
                results = await pipe.execute(raise_on_error=False)
        except (RedisError, OSError) as exc:
            # Leaving goes out again after the reconnect (applying a quit twice is
            # harmless); anything else is refused, though Redis may have taken it.
            self.outbox[:0] = [entry for entry in batch if entry[0] in self.leaving]
            for req, _args, _op in batch:
                if req not in self.leaving:
                    self._fail(req, EngineUnavailable("*", "Chat store unreachable, try again"))
            self._lost(exc)
            return
        for (req, _args, op), result in zip(batch, results, strict=True):
            if isinstance(result, ResponseError):
                nick = op.target if op.kind == "rename" else op.actor
                error: HubError = NickInUse(nick, "Nickname is already in use") \
                    if "NICK_IN_USE" in str(result) else \
                    EngineUnavailable("*", "Chat store refused the change")
                self._fail(req, error)

    def _fail(self, req: str, error: HubError) -> None:
        self.leaving.discard(req)
        request = self.requests.pop(req, None)
        if request is not None:
            self.stats["ops_failed"] += 1
            request[0].fail(error)

    # --- losing and finding Redis ---------------------------------------------------------
    def _lost(self, exc: BaseException) -> None:
        if not self.connected or self.closing:
            return
        self.connected = False
        self.stats["redis_errors"] += 1
        log.error("engine: Redis connection lost (%s); reconnecting", exc)
        for req in list(self.requests):
            if req not in self.leaving:  # leaving waits for the reconnect (see carry_out)
                self._fail(req, EngineUnavailable("*", "Chat store unreachable, try again"))
        self.tasks.append(asyncio.create_task(self._reconnect(), name="engine-reconnect"))

    async def _reconnect(self) -> None:
        delay = BACKOFF[0]
        old = self.redis
        self.redis = None
        if old is not None:
            try:
                await old.aclose()
            except (RedisError, OSError):
                pass
        while not self.connected and not self.closing:
            await asyncio.sleep(delay)
            try:
                await self._connect()
            except (RedisError, OSError) as exc:
                log.warning("engine: Redis still unreachable (%s); next try in %.1f s",
                            exc, min(delay * 2, BACKOFF[1]))
                delay = min(delay * 2, BACKOFF[1])
                continue
            self.stats["reconnects"] += 1
            log.info("engine: Redis reachable again; caught up to %s", self.applied)
            self.wake.set()

    # --- the periodic duties --------------------------------------------------------------
    async def _tick_loop(self) -> None:
        interval = max(0.05, self.node_timeout / 4)
        while not self.closing:
            await asyncio.sleep(interval)
            redis = self.redis
            if not self.connected or redis is None:
                continue
            try:
                await self._tick(redis)
            except (RedisError, OSError) as exc:
                self._lost(exc)
            except Exception:
                log.exception("engine: periodic duties failed")

    async def _tick(self, redis: aioredis.Redis) -> None:
        await self._heartbeat(redis)
        stale = [r for r, (_p, _s, t) in self.requests.items() if time.monotonic() - t > 2.0]
        if stale and self.buffer is None:  # an announcement went missing: read the log
            await self._catch_up(redis)
        self.leader = bool(await self.renew_script(
            keys=[self._key("leader")],
            args=[self.node, int(self.node_timeout * 1000)]))
        if not self.leader:
            return
        await self._find_alive(redis)
        if time.monotonic() >= self.reap_after:
            self._reap_lost_nodes()
        if self.session_timeout > 0:
            for key in await self.expired_script(args=[self.prefix, self.session_timeout]):
                user = self.hub.users.get(key)
                if user is not None and user.key not in self.reaping:
                    self.reaping.add(user.key)
                    self.quit(user, "Session timeout", time.time())
        if self.changed and time.monotonic() - self.last_snapshot > SNAPSHOT_EVERY:
            await self._write_snapshot(redis)

    async def _heartbeat(self, redis: aioredis.Redis) -> None:
        await redis.set(self._key(f"node:{self.node}"), str(time.time()),
                        px=int(self.node_timeout * 1000))

    async def _find_alive(self, redis: aioredis.Redis) -> None:
        prefix = self._key("node:")
        self.alive = {key[len(prefix):] async for key in redis.scan_iter(match=prefix + "*")}

    def _reap_lost_nodes(self) -> None:
        """Quit the users of nodes that stopped saying they are alive."""
        for user in list(self.hub.users.values()):
            if user.node and user.node not in self.alive and user.key not in self.reaping:
                self.reaping.add(user.key)
                log.info("engine: %s lost with node %s", user.nick, user.node)
                self.quit(user, "Node lost", time.time())

    async def _write_snapshot(self, redis: aioredis.Redis) -> None:
        """Store the hub as of ``applied`` and trim the log to the previous snapshot."""
        previous = await redis.get(self._key("snapshot"))
        await redis.set(self._key("snapshot"),
                        snapshot_json(self.applied, snapshot(self.hub)))
        if previous:
            await redis.xtrim(self._key("log"), minid=orjson.loads(previous)["log"])
        self.changed = False
        self.last_snapshot = time.monotonic()

    # --- sessions and figures -------------------------------------------------------------
    def sessions_seen(self, keys: Iterable[str]) -> None:
        """HTTP users with requests here since the last call (the leader expires the rest)."""
        keys = list(keys)
        if keys and self.connected and self.redis is not None:
            task = asyncio.create_task(self._touch(self.redis, keys))
            self.tasks.append(task)
            task.add_done_callback(self._forget_task)

    def _forget_task(self, task: asyncio.Task[None]) -> None:
        if task in self.tasks:
            self.tasks.remove(task)

    async def _touch(self, redis: aioredis.Redis, keys: list[str]) -> None:
        try:
            await self.touch_script(args=[self.prefix, *keys])
        except (RedisError, OSError) as exc:
            self._lost(exc)

    def snapshot(self) -> dict[str, Any]:
        figures = super().snapshot()
        figures.update({"engine": "redis", "node": self.node, "connected": self.connected,
                        "leader": self.leader, "nodes_alive": len(self.alive) or None,
                        "applied": self.applied, **{k: round(v, 3) if isinstance(v, float)
                                                     else v for k, v in self.stats.items()}})
        return figures


def casefold_if(condition: bool, nick: str) -> str:
    return casefold(nick) if condition else ""
