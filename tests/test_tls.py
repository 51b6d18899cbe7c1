"""TLS (issue 13): IRC over TLS on --ircs-port beside or instead of plain IRC, HTTPS and WSS
on the HTTP port or --https-port, the certificate reloaded on SIGHUP, chat connect --tls;
certificates from trustme."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import trustme
from websockets.asyncio.client import connect as ws_connect

from chat.client.transports import make_transport
from chat.tls import reload
from tests.conftest import MakeServer, eventually


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def pem(ca: trustme.CA, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A certificate for 127.0.0.1 and localhost, and its key, as files."""
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_pem.write_to_path(str(key_path))
    cert_path.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    yield str(cert_path), str(key_path)


def _write(path: str, data: bytes) -> None:
    with open(path, "wb") as file:
        file.write(data)


def client_ctx(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


async def _irc_register(port: int, ctx: ssl.SSLContext, nick: str) -> list[bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx,
                                                   server_hostname="127.0.0.1")
    writer.write(f"NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\nQUIT :done\r\n".encode())
    lines = []
    while line := await asyncio.wait_for(reader.readline(), 3):
        lines.append(line)
    writer.close()
    return lines


async def _https(port: int, ctx: ssl.SSLContext, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx,
                                                   server_hostname="127.0.0.1")
    writer.write(request)
    data = await asyncio.wait_for(reader.read(65536), 3)
    writer.close()
    return data


async def test_irc_over_tls_beside_plain(make_server: MakeServer, ca: trustme.CA,
                                         pem: tuple[str, str]) -> None:
    """With --tls-cert, IRC registers over TLS on --ircs-port and plain IRC still works."""
    cert, key = pem
    app = await make_server(tls_cert=cert, tls_key=key, ircs_port=0)
    assert app.ircs_port and app.irc_port and app.ircs_port != app.irc_port
    lines = await _irc_register(app.ircs_port, client_ctx(ca), "secure")
    assert any(b" 001 secure " in line for line in lines)
    assert lines[-1].startswith(b"ERROR :Closing Link")
    reader, writer = await asyncio.open_connection("127.0.0.1", app.irc_port)
    writer.write(b"NICK plain\r\nUSER p 0 * :p\r\n")
    assert b" 001 plain " in await asyncio.wait_for(reader.readline(), 3)
    writer.close()


async def test_tls_only_irc(make_server: MakeServer, pem: tuple[str, str],
                            caplog: pytest.LogCaptureFixture) -> None:
    """--no-plain-irc: IRC only over TLS, and the start-up line says so (not port 0)."""
    caplog.set_level(logging.INFO, logger="chat.app")
    cert, key = pem
    app = await make_server(tls_cert=cert, tls_key=key, ircs_port=0, plain_irc=False)
    assert app.irc_port == 0 and app.ircs_port
    started = [r.getMessage() for r in caplog.records if "max clients" in r.getMessage()]
    assert started and started[0].startswith("no plain IRC, HTTP on ")
    assert ":0," not in started[0]


async def test_https_and_wss_on_the_http_port(make_server: MakeServer, ca: trustme.CA,
                                              pem: tuple[str, str]) -> None:
    """The HTTP port speaks HTTPS; a session made over it opens a WSS WebSocket."""
    cert, key = pem
    app = await make_server(tls_cert=cert, tls_key=key, ircs_port=0)
    ctx = client_ctx(ca)
    body = orjson.dumps({"nick": "wss"})
    answer = await _https(app.http_port, ctx, b"POST /api/sessions HTTP/1.1\r\n"
                          b"Host: 127.0.0.1\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    assert answer.startswith(b"HTTP/1.1 201 ")
    token = orjson.loads(answer.partition(b"\r\n\r\n")[2])["token"]
    async with ws_connect(f"wss://127.0.0.1:{app.http_port}/api/ws?token={token}",
                          ssl=ctx) as ws:
        hello = orjson.loads(await asyncio.wait_for(ws.recv(), 3))
        assert hello["type"] == "hello" and hello["nick"] == "wss"


async def test_https_port_beside_plain_http(make_server: MakeServer, ca: trustme.CA,
                                            pem: tuple[str, str]) -> None:
    """--https-port: HTTPS there, plain HTTP stays on --http-port."""
    cert, key = pem
    app = await make_server(tls_cert=cert, tls_key=key, ircs_port=0, https_port=0)
    assert app.https_port and app.https_port != app.http_port
    ok = await _https(app.https_port, client_ctx(ca),
                      b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert ok.startswith(b"HTTP/1.1 200 ")
    reader, writer = await asyncio.open_connection("127.0.0.1", app.http_port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert (await asyncio.wait_for(reader.read(1000), 3)).startswith(b"HTTP/1.1 200 ")
    writer.close()


async def test_certificate_reloaded_on_sighup(make_server: MakeServer, ca: trustme.CA,
                                              tmp_path: Path, pem: tuple[str, str]) -> None:
    """After the files are replaced, a reload (SIGHUP's handler) serves the new certificate
    to new connections; a bad pair is refused and the old one kept."""
    cert, key = pem
    app = await make_server(tls_cert=cert, tls_key=key, ircs_port=0)
    ctx = client_ctx(ca)

    async def serial() -> int:
        _reader, writer = await asyncio.open_connection("127.0.0.1", app.ircs_port, ssl=ctx,
                                                        server_hostname="127.0.0.1")
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        writer.close()
        from cryptography import x509
        return x509.load_der_x509_certificate(der).serial_number

    before = await serial()
    fresh = ca.issue_cert("127.0.0.1")
    _write(cert, b"".join(blob.bytes() for blob in fresh.cert_chain_pems))
    _write(key, fresh.private_key_pem.bytes())
    assert app.reload_tls()
    after = await serial()
    assert after != before
    _write(key, b"not a key")
    assert not app.reload_tls()
    assert app.tls is not None and not reload(app.tls, cert, key)
    assert await serial() == after


@pytest.mark.parametrize("mode", ["irc", "poll", "ws", "sse"])
async def test_client_connects_with_tls(make_server: MakeServer, pem: tuple[str, str],
                                        mode: str) -> None:
    """chat connect --tls --insecure reaches the server in every kind of mode."""
    cert, key = pem
    app = await make_server(tls_cert=cert, tls_key=key, ircs_port=0)
    got: list[str] = []
    transport = make_transport(mode, host="127.0.0.1", irc_port=app.ircs_port,
                               http_port=app.http_port, nick=f"t{mode}",
                               on_event=lambda e: got.append(e.text), tls=True, insecure=True,
                               inbox=False)
    await transport.start()
    try:
        await transport.join("tls")
        await transport.send("tls", "over tls")
        # poll mode sees it at its next poll (1 s on): wait by the clock, with room for a
        # loaded machine, not for a number of short sleeps
        await eventually(lambda: "over tls" in got, "our message back over TLS")
    finally:
        await transport.close()


async def test_client_checks_the_certificate(make_server: MakeServer,
                                             pem: tuple[str, str]) -> None:
    """Without --insecure an untrusted certificate is refused."""
    cert, key = pem
    app = await make_server(tls_cert=cert, tls_key=key, ircs_port=0)
    transport = make_transport("irc", host="127.0.0.1", irc_port=app.ircs_port,
                               http_port=app.http_port, nick="careful",
                               on_event=lambda e: None, tls=True, timeout=2.0, backoff_max=0.1)
    with pytest.raises(Exception):  # noqa: B017 - the transport's own error type
        await asyncio.wait_for(transport.start(), 3)
    await transport.close()


def test_serve_refuses_bad_tls_and_network_options(tmp_path: Path) -> None:
    """A missing certificate, a key without a certificate, a bad --per-ip-exempt or
    --cloak: usage errors without a traceback."""
    import subprocess
    import sys
    (tmp_path / "junk.pem").write_text("junk")
    for args in (("--tls-cert", str(tmp_path / "missing.pem")),
                 ("--tls-cert", str(tmp_path / "junk.pem")), ("--tls-key", "k.pem"),
                 ("--per-ip-exempt", "nonsense"), ("--cloak", "sometimes"),
                 ("--log-format", "xml")):
        result = subprocess.run([sys.executable, "-m", "chat", "serve", "--irc-port", "0",
                                 "--http-port", "0", *args], capture_output=True, text=True,
                                timeout=30)
        assert result.returncode == 2, (args, result.stderr)
        assert "Error" in result.stderr and "Traceback" not in result.stderr
