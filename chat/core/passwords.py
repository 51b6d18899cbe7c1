"""Operator password hashes: scrypt from the standard library, checked in constant time (pure).

A stored hash reads ``scrypt$N$r$p$<salt>$<hash>`` (salt and hash in unpadded URL-safe
base64), so the config never holds a plain password.  ``chat oper-hash`` prints one.
Checking costs tens of milliseconds on purpose; the IRC adapter does it off the loop.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SCHEME = "scrypt"
N, R, P = 1 << 14, 8, 1   # ~16 MiB and ~50 ms per check on a current machine
DKLEN = 32
_MAXMEM = 64 << 20


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, *, salt: bytes | None = None, n: int = N, r: int = R,
                  p: int = P) -> str:
    """The stored form of ``password`` (a fresh 16-byte salt unless one is given)."""
    salt = secrets.token_bytes(16) if salt is None else salt
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=DKLEN,
                            maxmem=_MAXMEM)
    return f"{SCHEME}${n}${r}${p}${_b64(salt)}${_b64(digest)}"


def parse_hash(stored: str) -> tuple[int, int, int, bytes, bytes] | None:
    """``(n, r, p, salt, digest)`` of a stored hash, or None if it is not one."""
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != SCHEME:
        return None
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt, digest = _unb64(parts[4]), _unb64(parts[5])
    except ValueError:
        return None
    if n < 2 or n & (n - 1) or not 0 < r <= 64 or not 0 < p <= 16 or not salt or not digest:
        return None
    if 128 * r * n * p > _MAXMEM:
        return None
    return n, r, p, salt, digest


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored`` (False for a malformed hash)."""
    parsed = parse_hash(stored)
    if parsed is None:
        return False
    n, r, p, salt, digest = parsed
    candidate = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p,
                               dklen=len(digest), maxmem=_MAXMEM)
    return hmac.compare_digest(candidate, digest)


# What an unknown operator name is checked against, so a wrong name costs as long as a
# wrong password and the answer's timing does not tell which names exist.
DUMMY_HASH = f"{SCHEME}${N}${R}${P}${_b64(b'chatlab-no-such-')}${_b64(bytes(DKLEN))}"
