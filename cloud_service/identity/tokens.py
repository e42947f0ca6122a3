"""Bearer tokens: 256 random bits, shown once, stored only as a keyed hash.

The hash is HMAC-SHA256 under a server secret, so a copy of Redis alone cannot be used to test guesses
offline, and hashes compare in constant time. The secret is a file of at least 32 random bytes
(``cloud-service ca init`` writes one); its content never appears in a log or message.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from confroute.errors import InvalidInput

TOKEN_PREFIX = "crt_"  # recognisable in a leaked-secret scan
TOKEN_BYTES = 32
MIN_SECRET_BYTES = 32


def new_token() -> str:
    """A fresh bearer token: ``crt_`` and 43 URL-safe characters (256 bits)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


_TOKEN_LENGTH = len(TOKEN_PREFIX) + 43
_URLSAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def well_formed(token: str) -> bool:
    """Whether ``token`` has the shape :func:`new_token` gives (anything else is refused without a hash)."""
    return (len(token) == _TOKEN_LENGTH and token.startswith(TOKEN_PREFIX)
            and _URLSAFE.issuperset(token[len(TOKEN_PREFIX):]))


class TokenHasher:
    """Keyed hashes of tokens under one server secret."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < MIN_SECRET_BYTES:
            raise InvalidInput(f"the token secret must hold at least {MIN_SECRET_BYTES} bytes", field="identity_secret")
        self._secret = secret

    def __repr__(self) -> str:
        return "TokenHasher(<secret>)"

    def hash(self, token: str) -> str:
        """The hex HMAC-SHA256 of ``token``."""
        return hmac.new(self._secret, token.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


def load_secret(path: Path) -> TokenHasher:
    """The hasher for the secret in ``path``; an unreadable or short file is InvalidInput."""
    try:
        secret = path.read_bytes().strip()
    except OSError as exc:
        raise InvalidInput(f"cannot read the identity secret {path}: {exc}", field="identity_secret") from exc
    return TokenHasher(secret)


def write_secret(path: Path) -> None:
    """A new random secret in ``path`` (mode 0600); an existing file is kept (tokens hashed under it stay valid)."""
    if path.exists():
        return
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as out:
        out.write(secrets.token_hex(MIN_SECRET_BYTES) + "\n")
