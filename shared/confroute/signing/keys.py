"""Ed25519 key pairs on disk, their key ids, and the set of public keys a device trusts.

A key id is derived from the public key (``ed25519:`` + the first 16 hex digits of the SHA-256 of its
32 raw bytes), so it cannot disagree with the key it names and needs no registry. Private keys are
PKCS#8 PEM files written with mode 0600; public keys are SubjectPublicKeyInfo PEM files (``*.pub``).
Errors from ``cryptography`` and the file system become ``InvalidInput`` here, naming the file.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from confroute.errors import InvalidInput

KEY_ID_PREFIX = "ed25519:"
PUBLIC_SUFFIX = ".pub"
PRIVATE_SUFFIX = ".key"


def key_id_of(public_key: Ed25519PublicKey) -> str:
    """The key id of ``public_key``: ``ed25519:`` + 16 hex digits of SHA-256 over its raw bytes."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return KEY_ID_PREFIX + hashlib.sha256(raw).hexdigest()[:16]

SIGNATURE_BYTES = 64  # Ed25519

@dataclass(frozen=True)
class SigningKey:
    """A private key and the id devices know its public half by."""

    key_id: str
    private_key: Ed25519PrivateKey

    def sign(self, payload: bytes) -> bytes:
        return self.private_key.sign(payload)


@dataclass(frozen=True)
class TrustedKeys:
    """The public keys a device accepts signatures from, by key id. Trust old and new while rotating."""

    keys: Mapping[str, Ed25519PublicKey]

    def get(self, key_id: str) -> Ed25519PublicKey | None:
        return self.keys.get(key_id)

    def fault(self, key_id: str, signature: bytes, message: bytes) -> str | None:
        """Why ``signature`` by ``key_id`` over ``message`` is not accepted (None: it is), one rule for every
        signed artifact (policies, probes, bundle releases): ``"unsigned"``, ``"untrusted key"``, ``"length"``
        (not the 64 bytes of Ed25519) or ``"mismatch"`` (it does not verify)."""
        if not signature:
            return "unsigned"
        public_key = self.keys.get(key_id)
        if public_key is None:
            return "untrusted key"
        if len(signature) != SIGNATURE_BYTES:
            return "length"
        try:
            public_key.verify(signature, message)
        except InvalidSignature:
            return "mismatch"
        return None

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(sorted(self.keys))

    @classmethod
    def of(cls, public_keys: Iterable[Ed25519PublicKey]) -> TrustedKeys:
        return cls({key_id_of(key): key for key in public_keys})


def generate_key_pair(stem: Path) -> SigningKey:
    """Writes ``STEM.key`` (private, mode 0600) and ``STEM.pub`` (public); refuses to overwrite either."""
    private_key = Ed25519PrivateKey.generate()
    private_pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    private_path, public_path = stem.with_name(stem.name + PRIVATE_SUFFIX), stem.with_name(stem.name + PUBLIC_SUFFIX)
    _write_new(private_path, private_pem, mode=0o600)
    _write_new(public_path, public_pem, mode=0o644)
    return SigningKey(key_id_of(private_key.public_key()), private_key)


def load_signing_key(path: Path) -> SigningKey:
    """The Ed25519 private key in the PEM file at ``path``."""
    data = _read(path)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise InvalidInput(f"{path} does not hold an unencrypted PEM private key: {exc}", field="signing_key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidInput(f"{path} holds a {type(key).__name__}, not an Ed25519 key", field="signing_key")
    return SigningKey(key_id_of(key.public_key()), key)


def load_public_key(path: Path) -> Ed25519PublicKey:
    """The Ed25519 public key in the PEM file at ``path``."""
    data = _read(path)
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise InvalidInput(f"{path} does not hold a PEM public key: {exc}", field="trusted_keys") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise InvalidInput(f"{path} holds a {type(key).__name__}, not an Ed25519 key", field="trusted_keys")
    return key


def load_trusted_keys(paths: Iterable[Path]) -> TrustedKeys:
    """The public keys in ``paths``: ``*.pub`` files, or folders whose ``*.pub`` files are all trusted."""
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(path.glob(f"*{PUBLIC_SUFFIX}")) if path.is_dir() else [path])
    return TrustedKeys.of(load_public_key(file) for file in files)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read key file {path}: {exc}", field="key_file") from exc


def _write_new(path: Path, data: bytes, *, mode: int) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    except OSError as exc:
        raise InvalidInput(f"cannot write key file {path}: {exc}", field="key_file") from exc
