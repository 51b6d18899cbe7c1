"""TLS for the listeners: one server ``SSLContext`` from ``--tls-cert``/``--tls-key``, and its
reload on SIGHUP (the adapters only pass the context to ``create_server``).

A reload loads the new files into a throwaway context first, so a broken or mismatched pair
is refused with a log line and the running certificate stays; a good pair is then loaded
into the live context, where OpenSSL uses it for every handshake from then on (connections
already open keep theirs).
"""

from __future__ import annotations

import logging
import ssl

log = logging.getLogger(__name__)


def server_context(cert: str, key: str | None) -> ssl.SSLContext:
    """A server context with the certificate chain ``cert`` and private key ``key`` (None:
    in ``cert``); TLS 1.2 at least, the library's default ciphers.  Raises OSError or
    ssl.SSLError on unreadable or mismatched files."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


def reload(context: ssl.SSLContext, cert: str, key: str | None) -> bool:
    """Load ``cert``/``key`` into the live ``context``; False (logged) if they are bad."""
    try:
        server_context(cert, key)  # refuses a bad pair without touching the live one
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        log.error("TLS certificate not reloaded, keeping the old one: %s", exc)
        return False
    log.info("TLS certificate reloaded from %s", cert)
    return True
