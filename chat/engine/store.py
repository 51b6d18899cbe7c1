"""What the Redis engine keeps in Redis and sends through it, as pure functions.

Keys (all under ``<prefix>:``):

* ``seq`` - the one event id counter (INCRBY by the ids an Op consumes);
* ``log`` - a stream of every Op in order (the replication log; ``last`` is its newest id);
* ``ops`` - the pub/sub channel announcing each Op as it is logged;
* ``h:<room>`` / ``i:<user>`` - per-room history and HTTP users' private messages, streams
  bounded by ``--history`` (MAXLEN ~);
* ``nicks`` - hash of claimed nicks (casefolded) -> owning node, for global uniqueness;
* ``active`` - sorted set of HTTP users by their last request (Redis's clock, seconds);
* ``epoch`` - the store's run (set once; a store that lost its data gets a new one);
* ``node:<id>`` - one key per live node, expiring after ``--node-timeout``;
* ``leader`` - the node that snapshots, trims and reaps; ``snapshot`` - the hub state.

:data:`SUBMIT` is the one Lua script that makes an Op happen: claim or release a nick,
take the ids, append the Op to the log and its events to their histories, publish. Redis
runs it atomically, so the ids, the log order, the histories and the announcements agree.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson

from ..core.events import Event
from ..core.hub import Hub, Op, op_events, op_from_list
from ..core.names import casefold

SUBMIT = """
local p = ARGV[1]
if ARGV[4] ~= '' and redis.call('HSETNX', p .. ':nicks', ARGV[4], ARGV[5]) == 0 then
  return redis.error_reply('NICK_IN_USE')
end
if ARGV[6] ~= '' then redis.call('HDEL', p .. ':nicks', ARGV[6]) end
local ids = tonumber(ARGV[3])
local first = '0'
if ids > 0 then  -- Lua numbers are doubles: ids (< 2^53) are formatted as integers
  first = string.format('%.0f', redis.call('INCRBY', p .. ':seq', ids) - ids + 1)
end
local prev = redis.call('GET', p .. ':last') or '0-0'
local id = redis.call('XADD', p .. ':log', 'MAXLEN', '~', ARGV[10], '*',
                      'op', ARGV[2], 'first', first, 'node', ARGV[7], 'req', ARGV[8],
                      'prev', prev)
redis.call('SET', p .. ':last', id)
if ARGV[11] ~= '' then
  local t = redis.call('TIME')
  redis.call('ZADD', p .. ':active', t[1] + t[2] / 1000000, ARGV[11])
end
if ARGV[12] ~= '' then redis.call('ZREM', p .. ':active', ARGV[12]) end
for i = 13, #ARGV, 3 do
  redis.call('XADD', p .. ':' .. ARGV[i], 'MAXLEN', '~', ARGV[9], '*',
             'id', string.format('%.0f', tonumber(first) + tonumber(ARGV[i + 1])),
             'e', ARGV[i + 2])
end
redis.call('PUBLISH', p .. ':ops',
           table.concat({id, prev, first, ARGV[7], ARGV[8], ARGV[2]}, ' '))
return {id, first}
"""

TOUCH = """
local t = redis.call('TIME')
local now = t[1] + t[2] / 1000000
for i = 2, #ARGV do redis.call('ZADD', ARGV[1] .. ':active', 'XX', now, ARGV[i]) end
return 1
"""

EXPIRED = """
local t = redis.call('TIME')
local now = t[1] + t[2] / 1000000
return redis.call('ZRANGEBYSCORE', ARGV[1] .. ':active', '-inf', now - tonumber(ARGV[2]))
"""

RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) and 1 or 0
"""


class Announced(NamedTuple):
    """One Op as the ``ops`` channel or the ``log`` stream tells it."""

    sid: str       # its position in the log (a stream id)
    prev: str      # the log position before it
    first: int     # its first event id
    node: str      # the proposing node
    req: str       # the proposer's request number
    op: Op


def parse_announcement(data: str) -> Announced:
    sid, prev, first, node, req, op = data.split(" ", 5)
    return Announced(sid, prev, int(first), node, req, op_from_list(orjson.loads(op)))


def from_log_entry(sid: str, fields: dict[str, str]) -> Announced:
    return Announced(sid, fields["prev"], int(fields["first"]), fields["node"],
                     fields["req"], op_from_list(orjson.loads(fields["op"])))


def stream_key(sid: str) -> tuple[int, int]:
    """A stream id as a sortable pair (``1700000000000-3`` -> (1700000000000, 3))."""
    ms, _, seq = sid.partition("-")
    return int(ms), int(seq or 0)


def claims(op: Op, owner: str) -> tuple[str, str]:
    """(nick to claim, nick to release), casefolded, for an Op ("" for none)."""
    if op.kind == "register":
        return casefold(op.actor), ""
    if op.kind == "rename":
        old, new = casefold(op.actor), casefold(op.target)
        return ("", "") if old == new else (new, old)
    if op.kind == "quit":
        return "", casefold(op.actor)
    if op.kind == "kill":  # a kill ends as the victim's quit: its nick is free
        return "", casefold(op.target)
    return "", ""


def history_entries(hub: Hub, op: Op) -> list[str]:
    """Flat (stream suffix, index, stored event) triples for the events ``op`` creates:
    room events into the room's history, private ones into an HTTP recipient's inbox."""
    out: list[str] = []
    for index, event in enumerate(op_events(op, 0)):
        if event.target.startswith("#"):
            suffix = "h:" + casefold(event.target)
        else:
            recipient = hub.find_user(event.target)
            if recipient is None or recipient.transport != "http":
                continue  # pushed, never kept
            suffix = "i:" + recipient.key
        out += [suffix, str(index), stored_event(event)]
    return out


def stored_event(event: Event) -> str:
    """An event as a history stream keeps it (its id is the entry's ``id`` field); the
    mode parameters, kicked nick, ... and client tags only when it has them."""
    fields: list[object] = [event.target, event.ts, event.kind, event.nick, event.userhost,
                            event.text]
    if event.args or event.tags:
        fields += [list(event.args), event.tags or {}]
    return orjson.dumps(fields).decode()


def loaded_event(event_id: str, data: str) -> Event:
    fields = orjson.loads(data)
    target, ts, kind, nick, userhost, text = fields[:6]
    args = tuple(str(a) for a in fields[6]) if len(fields) > 6 else ()
    tags = {str(k): str(v) for k, v in fields[7].items()} if len(fields) > 7 else None
    return Event(target, int(event_id), float(ts), kind, nick, userhost, text, args,
                 tags or None)


def op_json(op: Op) -> str:
    return orjson.dumps(op.to_list()).decode()


def snapshot_json(log_id: str, state: dict[str, Any]) -> str:
    return orjson.dumps({"log": log_id, "state": state}).decode()
