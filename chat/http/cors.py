"""CORS for the API: which origins may call it, and the headers that say so; which ``Host``
names are served, and which origins may open a WebSocket (pure).

No origin is allowed unless the operator names it with ``--cors-origin`` (repeatable;
``*`` allows any).  The API uses bearer tokens, never cookies, so no answer says
``Access-Control-Allow-Credentials``.  Two kinds of answers carry CORS headers:

* every response to a request whose ``Origin`` is allowed gets ``Access-Control-Allow-Origin``
  (that origin) and ``Access-Control-Expose-Headers`` (what a script may read), via
  :meth:`Cors.headers`, encoded once per origin;
* a preflight (``OPTIONS`` with ``Access-Control-Request-Method``) to a known route gets 204
  with the route's methods and the request headers the API reads
  (:meth:`Cors.preflight_headers`),
  or 403 ``origin_not_allowed`` / 405 if the origin or the method is not allowed.

Every such answer says ``Vary: Origin`` so a cache keeps one copy per origin.

:class:`HostCheck` is the DNS-rebinding guard: a page of ``evil.example`` whose name was
made to resolve to 127.0.0.1 reaches this server with ``Host: evil.example``, so only the
names in ``--allowed-host`` (by default the listen address, ``localhost``, ``127.0.0.1``,
``[::1]``) are served.  :meth:`Cors.websocket_allowed` is the WebSocket handshake's
``Origin`` check (browsers send no preflight for it): the page's own origin (the one whose
host is the request's ``Host``) or one of ``--cors-origin``; a client that sends no
``Origin`` (not a browser) is let in.
"""

from __future__ import annotations

ALLOWED_HEADERS = b"authorization, content-type, last-event-id"
EXPOSED_HEADERS = b"retry-after, www-authenticate"
MAX_AGE = 600  # seconds a browser may cache a preflight answer


class Cors:
    """The ``--cors-origin`` list and the header blocks it leads to."""

    __slots__ = ("any", "origins", "_cache")

    def __init__(self, origins: tuple[str, ...]) -> None:
        self.any = "*" in origins
        self.origins = frozenset(o.rstrip("/").lower().encode("latin-1")
                                 for o in origins if o != "*")
        self._cache: dict[bytes, bytes] = {}

    @property
    def enabled(self) -> bool:
        return self.any or bool(self.origins)

    def allowed(self, origin: bytes | None) -> bool:
        if origin is None or not self.enabled:
            return False
        return self.any or origin.lower() in self.origins

    def headers(self, origin: bytes | None) -> bytes:
        """Header lines for a response to ``origin`` (empty if it is not allowed)."""
        if origin is None or not self.allowed(origin):
            return b""
        block = self._cache.get(origin)
        if block is None:
            if len(self._cache) > 256:  # '*' lets any origin in: keep the cache bounded
                self._cache.clear()
            block = self._cache[origin] = (
                b"access-control-allow-origin: %s\r\naccess-control-expose-headers: %s\r\n"
                b"vary: origin\r\n" % (origin, EXPOSED_HEADERS))
        return block

    def websocket_allowed(self, origin: bytes | None, host: bytes | None) -> bool:
        """May a page of ``origin`` open a WebSocket on this server reached as ``host``?"""
        if origin is None or self.allowed(origin):
            return True
        scheme, sep, netloc = origin.lower().partition(b"://")
        return bool(sep) and scheme in (b"http", b"https") and host is not None \
            and netloc == host.lower()

    def preflight_headers(self, origin: bytes, methods: list[str]) -> bytes:
        """The extra lines of a successful preflight answer."""
        allow = ", ".join(methods).encode("ascii")
        return self.headers(origin) + (
            b"access-control-allow-methods: %s\r\naccess-control-allow-headers: %s\r\n"
            b"access-control-max-age: %d\r\n" % (allow, ALLOWED_HEADERS, MAX_AGE))


def host_name(value: bytes) -> str:
    """The name in a ``Host`` header, lower-cased, without its port (``[::1]:80`` -> ``::1``)."""
    text = value.decode("latin-1").strip().lower()
    if text.startswith("["):
        return text[1:].partition("]")[0]
    if text.count(":") > 1:  # a bare IPv6 address (in a configured name)
        return text
    name, sep, port = text.rpartition(":")
    return name if sep and port.isdigit() else text


class HostCheck:
    """The ``Host`` names this server answers (``*``: any)."""

    __slots__ = ("any", "names")

    def __init__(self, allowed: tuple[str, ...], listen: str) -> None:
        names = [n for a in allowed for n in a.split()] or [
            listen, "localhost", "127.0.0.1", "::1"]
        self.any = "*" in names
        self.names = frozenset(host_name(n.encode("latin-1")) for n in names if n != "*")

    def allowed(self, host: bytes | None) -> bool:
        """True for a served name, or no Host at all (HTTP/1.0; HTTP/1.1 needs one, which
        the connection checks)."""
        return self.any or host is None or host_name(host) in self.names
