"""Session creation is bounded (issue 13 item 7): per-address rate, --max-sessions, member
lists capped in join answers and paged by the members route, memory and logs after expiry."""

from __future__ import annotations

import asyncio
import logging
from typing import cast

import pytest

from chat.core.clock import Now
from chat.core.hub import User
from chat.http.sessions import CreationBudget, SessionTable
from tests.conftest import MakeServer

from .util import Conn, call, new_session


def test_creation_budget_refills_and_forgets_idle_addresses() -> None:
    """A burst, then 429 with a wait; a refilled address is pruned from the table."""
    budget = CreationBudget(rate=2.0, burst=3)
    assert [budget.charge("10.0.0.1", 0.0) for _ in range(3)] == [None, None, None]
    assert budget.charge("10.0.0.1", 0.0) == 1
    assert budget.charge("10.0.0.2", 0.0) is None  # another address has its own budget
    budget.prune(0.1)
    assert set(budget.by_ip) == {"10.0.0.1", "10.0.0.2"}
    budget.prune(10.0)
    assert budget.by_ip == {}
    assert CreationBudget(rate=0, burst=1).charge("x", 0.0) is None  # 0 disables


def test_session_table_compacts_after_mass_expiry() -> None:
    """The token table is rebuilt (its memory freed) once it holds under a quarter of its
    peak."""
    table = SessionTable(0, 1, 60)
    user = cast(User, None)  # the table never looks at its users
    sessions = [table.create(f"t{i}", user, 0.0) for i in range(4000)]
    for session in sessions[:3500]:
        table.remove(session)
    before = table.by_token
    assert table.compact() and table.by_token is not before
    assert len(table) == 500 and not table.compact()


async def _post_session(port: int, nick: str) -> int:
    resp = await call(port, "POST", "/api/sessions", body={"nick": nick})
    return resp.status


async def test_max_sessions_answers_503_with_retry_after(make_server: MakeServer) -> None:
    """Past --max-sessions a new session is refused with 503 too_many_sessions."""
    app = await make_server(max_sessions=3)
    for nick in ("a", "b", "c"):
        await new_session(app.http_port, nick)
    resp = await call(app.http_port, "POST", "/api/sessions", body={"nick": "d"})
    assert resp.status == 503 and resp.json()["error"] == "too_many_sessions"
    assert int(resp.headers["retry-after"]) >= 1
    assert app.engine.find_user("d") is None


async def test_per_address_session_rate(make_server: MakeServer,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """One (non-exempt) address gets --session-burst sessions, then 429 with Retry-After."""
    app = await make_server(session_rate=0.5, session_burst=2)
    monkeypatch.setattr(app.state, "exempt", lambda ip: False)  # loopback counts here
    assert await _post_session(app.http_port, "a") == 201
    assert await _post_session(app.http_port, "b") == 201
    resp = await call(app.http_port, "POST", "/api/sessions", body={"nick": "c"})
    assert resp.status == 429 and resp.json()["error"] == "rate_limited"
    assert int(resp.headers["retry-after"]) >= 1


async def test_loopback_is_exempt_from_the_session_rate(make_server: MakeServer) -> None:
    """Loopback (the lab, the tests) is not limited per address, as for connections."""
    app = await make_server(session_rate=0.5, session_burst=1)
    for nick in ("a", "b", "c"):
        assert await _post_session(app.http_port, nick) == 201


async def test_join_answer_caps_members_and_members_route_pages(
        make_server: MakeServer) -> None:
    """A join answer lists at most --join-members nicks with the total; the members route
    pages through all of them with offset and limit."""
    app = await make_server(join_members=3)
    nicks = [f"m{i}" for i in range(7)]
    for nick in nicks:
        await new_session(app.http_port, nick, "big")
    token = await new_session(app.http_port, "last")
    joined = (await call(app.http_port, "POST", "/api/rooms/big/join", token=token)).json()
    assert len(joined["members"]) == 3 and joined["members_total"] == 8
    seen: list[str] = []
    offset: int | None = 0
    conn = await Conn.open(app.http_port)
    while offset is not None:
        page = (await conn.request("GET", f"/api/rooms/big/members?offset={offset}",
                                   token=token)).json()
        assert len(page["members"]) <= 3 and page["total"] == 8
        seen += [m["nick"] for m in page["members"]]
        offset = page["next"]
    assert sorted(seen) == sorted(nicks + ["last"])
    bad = await conn.request("GET", "/api/rooms/big/members?limit=0", token=token)
    assert bad.status == 400


async def test_mass_expiry_logs_one_line(make_server: MakeServer,
                                        caplog: pytest.LogCaptureFixture) -> None:
    """Many sessions expiring in one sweep log one line, not one each."""
    app = await make_server(session_timeout=5.0)
    await asyncio.gather(*(new_session(app.http_port, f"x{i}") for i in range(30)))
    # One sweep, a minute on, finds them all expired (the periodic sweep with a short
    # timeout split them in two on a busy machine, when creating them spanned its tick).
    now = app.state.now()
    with caplog.at_level(logging.INFO, logger="chat.http.api"):
        assert app.http.api.sweep(Now(now.wall + 60, now.mono + 60)) == 30
    lines = [r.getMessage() for r in caplog.records if "expired" in r.getMessage()]
    assert app.stats.http.sessions_open == 0
    assert len(lines) <= 3 and any("sessions expired" in line for line in lines)


async def test_mass_expiry_gives_memory_back(make_server: MakeServer,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """After a mass expiry the housekeeping tick trims the heap (once, not per sweep)."""
    import chat.http.server as http_server
    calls: list[int] = []
    monkeypatch.setattr(http_server, "TRIM_AFTER", 10)
    monkeypatch.setattr(http_server, "trim_memory", lambda: calls.append(1) or True)
    app = await make_server(session_timeout=0.2)
    await asyncio.gather(*(new_session(app.http_port, f"y{i}") for i in range(30)))
    for _ in range(40):
        await asyncio.sleep(0.05)
        if app.stats.http.sessions_open == 0 and calls:
            break
    assert app.stats.http.sessions_open == 0 and calls == [1]


def test_trim_memory_runs() -> None:
    """The trim itself works here (glibc's malloc_trim), or says it cannot."""
    from chat.runtime import trim_memory
    assert trim_memory() in (True, False)
