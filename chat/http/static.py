"""The page's static files, read once from the package and served from memory.

:func:`load` reads every file of :mod:`chat.web` (package data, so it works from an installed
wheel as from a checkout) into a :class:`StaticFiles`; the API answers ``GET /`` and
``GET /static/<name>`` from it with an ETag and the page's security headers.  The
Content-Security-Policy lets the page run only its own scripts and styles, talk only to its
own origin (HTTP and WebSocket), and never be framed.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from typing import NamedTuple

PAGE_PACKAGE = "chat.web"
INDEX = "index.html"
TYPES = {"html": b"text/html; charset=utf-8", "js": b"text/javascript; charset=utf-8",
         "css": b"text/css; charset=utf-8", "svg": b"image/svg+xml", "json": b"application/json"}
CSP = (b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
       b"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
SECURITY = (b"content-security-policy: %s\r\nx-content-type-options: nosniff\r\n"
            b"referrer-policy: no-referrer\r\nx-frame-options: DENY\r\n"
            b"cross-origin-opener-policy: same-origin\r\ncache-control: no-cache\r\n" % CSP)


class StaticFile(NamedTuple):
    body: bytes
    content_type: bytes
    etag: bytes  # quoted, as the ETag header wants it


class StaticFiles:
    """Files by name (``index.html``, ``app.js`` ...); nothing else is ever served."""

    __slots__ = ("files",)

    def __init__(self, files: dict[str, StaticFile]) -> None:
        self.files = files

    def get(self, name: str) -> StaticFile | None:
        return self.files.get(name)


def load(package: str = PAGE_PACKAGE) -> StaticFiles:
    """Read the page's files (any name with a known extension) from ``package``."""
    files: dict[str, StaticFile] = {}
    for entry in resources.files(package).iterdir():
        kind = entry.name.rpartition(".")[2]
        if entry.is_file() and kind in TYPES:
            body = entry.read_bytes()
            etag = b'"%s"' % hashlib.sha256(body).hexdigest()[:20].encode("ascii")
            files[entry.name] = StaticFile(body, TYPES[kind], etag)
    return StaticFiles(files)
