"""The page's files, the OpenAPI description against the real routes, CORS, and ?close=1."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from chat.core.names import ROOM_RE
from chat.http.api import PUBLIC, ROUTES
from chat.http.routes import ROUTE_PATHS, route_of

from ..conftest import MakeServer
from .util import Conn, call, new_session

ROOT = Path(__file__).resolve().parents[2]


def _sample(template: str) -> str:
    return template.replace("{room}", "lobby").replace("{nick}", "bob").replace(
        "{file}", "app.js")


def test_every_route_template_leads_back_to_its_route() -> None:
    """ROUTE_PATHS names exactly the routes the API has, and each template matches its own."""
    assert set(ROUTE_PATHS) == set(PUBLIC) | set(ROUTES)
    for route, template in ROUTE_PATHS.items():
        assert route_of(_sample(template).split("/"))[0] == route, template
    assert ROOM_RE.match("lobby")


async def test_openapi_describes_the_routes_the_server_has(make_server: MakeServer) -> None:
    """/api/openapi.json lists every (path, method) the server answers, and nothing else."""
    app = await make_server()
    spec = (await call(app.http_port, "GET", "/api/openapi.json")).json()
    assert spec["openapi"].startswith("3.")
    described = {(path, method.upper()) for path, ops in spec["paths"].items() for method in ops}
    real = {(ROUTE_PATHS[route], method) for table in (PUBLIC, ROUTES)
            for route, methods in table.items() for method in methods}
    assert described == real
    for path, method in real - {(p, "HEAD") for p, _m in real}:  # each is answered
        status = (await call(app.http_port, method, _sample(path))).status
        assert status not in (404, 405), (method, path, status)
    frames = spec["components"]["schemas"]["WsClientFrame"]["oneOf"]
    assert {f["properties"]["type"]["const"] for f in frames} >= {
        "say", "msg", "join", "part", "nick", "topic", "resume"}


def test_readme_endpoint_table_matches_openapi() -> None:
    """The README's endpoint table has one row per described operation (HEAD aside)."""
    readme = (ROOT / "README.md").read_text()
    table = readme.split("### Endpoints", 1)[1].split("**Events**", 1)[0]
    rows = set(re.findall(r"^\| `(GET|POST|DELETE) (/[^ `?]*)", table, re.M))
    real = {(method, ROUTE_PATHS[route]) for table_ in (PUBLIC, ROUTES)
            for route, methods in table_.items() for method in methods if method != "HEAD"}
    assert rows == real


async def test_page_files_and_security_headers(make_server: MakeServer) -> None:
    """/ and /static/* come with a strict CSP and an ETag; unknown files are 404."""
    app = await make_server()
    page = await call(app.http_port, "GET", "/")
    assert page.status == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe" not in csp
    assert b'<script type="module" src="/static/app.js">' in page.body
    script = await call(app.http_port, "GET", "/static/app.js")
    assert script.status == 200 and script.headers["content-type"].startswith("text/javascript")
    etag = script.headers["etag"]
    cached = await call(app.http_port, "GET", "/static/app.js", headers={"If-None-Match": etag})
    assert cached.status == 304 and cached.body == b""
    assert (await call(app.http_port, "GET", "/static/nope.js")).status == 404
    assert (await call(app.http_port, "GET", "/static/..%2Fapi.py")).status == 404


async def test_cors_preflight_and_headers(make_server: MakeServer) -> None:
    """Only --cors-origin origins get CORS headers; preflights get the route's methods."""
    app = await make_server(cors_origin=("http://page.example",))
    port = app.http_port
    token = await new_session(port, "alice", "lobby")
    ok = await call(port, "OPTIONS", "/api/rooms/lobby/messages", headers={
        "Origin": "http://page.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert ok.status == 204
    assert ok.headers["access-control-allow-origin"] == "http://page.example"
    assert "POST" in ok.headers["access-control-allow-methods"]
    assert "authorization" in ok.headers["access-control-allow-headers"]
    denied = await call(port, "OPTIONS", "/api/rooms/lobby/messages", headers={
        "Origin": "http://evil.example", "Access-Control-Request-Method": "POST"})
    assert denied.status == 403 and denied.json()["error"] == "origin_not_allowed"
    wrong = await call(port, "OPTIONS", "/api/rooms", headers={
        "Origin": "http://page.example", "Access-Control-Request-Method": "DELETE"})
    assert wrong.status == 405
    poll = await call(port, "GET", "/api/rooms/lobby/messages", token=token,
                      headers={"Origin": "http://page.example"})
    assert poll.headers["access-control-allow-origin"] == "http://page.example"
    assert poll.headers["vary"] == "origin"
    other = await call(port, "GET", "/api/rooms/lobby/messages", token=token,
                       headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    plain = await call(port, "OPTIONS", "/api/rooms")
    assert plain.status == 204 and "OPTIONS" in plain.headers["allow"]


async def test_no_cors_by_default(make_server: MakeServer) -> None:
    """Without --cors-origin no origin is allowed."""
    app = await make_server()
    resp = await call(app.http_port, "GET", "/healthz", headers={"Origin": "http://x.example"})
    assert "access-control-allow-origin" not in resp.headers


async def test_close_parameter_closes_the_connection(make_server: MakeServer) -> None:
    """?close=1 answers with Connection: close and closes, as a browser cannot ask itself."""
    app = await make_server()
    token = await new_session(app.http_port, "closer", "lobby")
    conn = await Conn.open(app.http_port)
    resp = await conn.request("GET", "/api/rooms/lobby/messages?close=1", token=token)
    assert resp.status == 200 and resp.headers["connection"] == "close"
    assert await conn.closed()
    me = (await call(app.http_port, "GET", "/api/sessions/me", token=token)).json()
    assert me["counters"]["requests"] == 2 and me["counters"]["connections"] == 2


async def test_a_connection_belongs_to_its_first_metered_session(
        make_server: MakeServer) -> None:
    """Sign-ins and joins on one pooled connection: it counts for the session whose metered
    request came first (not for none because the unmetered sign-in came first), once."""
    app = await make_server()
    conn = await Conn.open(app.http_port)
    tokens = []
    for nick in ("pooled", "sharer"):
        resp = await conn.request("POST", "/api/sessions", body={"nick": nick})
        tokens.append(resp.json()["token"])
    for token in tokens * 2:
        assert (await conn.request("POST", "/api/rooms/pool/join", token=token)).status == 200
    counts = []
    for token in tokens:
        me = (await conn.request("GET", "/api/sessions/me", token=token)).json()
        counts.append((me["counters"]["requests"], me["counters"]["connections"]))
    assert counts == [(2, 1), (2, 0)]


@pytest.mark.timeout(120)
def test_wheel_carries_the_page(tmp_path: Path) -> None:
    """`pip install .` gets the page: the wheel holds chat/web, and serves it from there."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path), str(ROOT)], check=True, timeout=110)
    wheel = next(tmp_path.glob("chatlab-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert {"chat/web/index.html", "chat/web/app.js", "chat/web/style.css"} <= set(names)
    target = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(target)
    probe = ("import sys; sys.meta_path[:] = [f for f in sys.meta_path "  # not the checkout's
             "if 'editable' not in type(f).__module__]; "                 # editable finder
             "import chat, chat.http.static as s; f = s.load(); "
             "print(chat.__file__); print(sorted(f.files))")
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True,
                         text=True, env={"PYTHONPATH": str(target)}, cwd=tmp_path,
                         timeout=60).stdout
    where, files = out.splitlines()
    assert where.startswith(str(target))  # the installed copy, not the checkout
    assert "'index.html'" in files and "'race.js'" in files
